/* Thread ids of fibers.
 *
 * Natively every thread has a kernel tid, unique while it lives, stable,
 * equal to the pid for the main thread only.  A fiber's tid is the value
 * glibc keeps in its TCB (tls_glibc.c gives each fiber TCB a fake 0x20000000+n,
 * above PID_MAX_LIMIT, so a program that hands it to the kernel behind our
 * back gets ESRCH instead of reaching an unrelated thread); the main
 * fiber's is the pid, as natively, although its TCB carries a fake one
 * (tls_glibc.c moves the real tid to carrier 0's idle TCB for set*id).
 *
 * The table maps tids back to fibers for calls that take a tid (tgkill,
 * sched_setaffinity, ...).  Chained hash; writers (fiber birth and end, on
 * the fiber itself or its creator) hold the bucket's spinlock and bump its
 * sequence word around the change; readers take no lock (a tid may be
 * looked up inside a signal handler that interrupted a writer) and retry
 * while the sequence is odd or moved.  Fiber structs are never freed, so a
 * reader following a stale link reads a valid fiber and compares its tid.
 */
#include <stdatomic.h>
#include "runtime/fiber.h"
#include "runtime/identity.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

#define BUCKETS 4096

struct bucket {
    atomic_uint seq;
    fz_spinlock lock;
    struct fz_fiber *_Atomic head;
};

/* page-aligned: a fork child swaps its pages for fresh ones (fz_zero_table) */
static struct bucket table[BUCKETS] __attribute__((aligned(4096)));

static struct bucket *bucket_of(pid_t tid)
{
    return &table[((uint32_t)tid * 2654435761u) >> 20];
}

static void write_begin(struct bucket *b)
{
    fz_spin_lock(&b->lock);
    atomic_fetch_add_explicit(&b->seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void write_end(struct bucket *b)
{
    atomic_fetch_add_explicit(&b->seq, 1, memory_order_release);
    fz_spin_unlock(&b->lock);
}

void fz_ident_register(struct fz_fiber *f)
{
    fz_ident_register_as(f, f->is_main ? (pid_t)fz_sys0(SYS_getpid) : fz_tcb_tid(f->tcb));
}

void fz_ident_register_as(struct fz_fiber *f, pid_t tid)
{
    f->tid = tid;
    struct bucket *b = bucket_of(f->tid);
    write_begin(b);
    atomic_store_explicit(&f->tid_next, atomic_load_explicit(&b->head, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&b->head, f, memory_order_release);
    write_end(b);
}

void fz_ident_unregister(struct fz_fiber *f)
{
    struct bucket *b = bucket_of(f->tid);
    write_begin(b);
    struct fz_fiber *_Atomic *p = &b->head;
    for (struct fz_fiber *v; (v = atomic_load_explicit(p, memory_order_relaxed)); p = &v->tid_next)
        if (v == f) {
            atomic_store_explicit(p, atomic_load_explicit(&f->tid_next, memory_order_relaxed),
                                  memory_order_relaxed);
            break;
        }
    write_end(b);
}

struct fz_fiber *fz_ident_lookup(pid_t tid)
{
    if (tid <= 0)
        return NULL;
    struct bucket *b = bucket_of(tid);
    for (;;) {
        unsigned seq = atomic_load_explicit(&b->seq, memory_order_acquire);
        if (seq & 1) {
            fz_cpu_relax();
            continue;
        }
        struct fz_fiber *found = NULL;
        unsigned steps = 0;
        for (struct fz_fiber *v = atomic_load_explicit(&b->head, memory_order_acquire);
             v && steps < 100000;
             v = atomic_load_explicit(&v->tid_next, memory_order_acquire), steps++)
            if (v->tid == tid) {
                found = v;
                break;
            }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&b->seq, memory_order_relaxed) == seq)
            return found;
    }
}

struct fz_fiber *fz_ident_any(bool (*accept)(struct fz_fiber *, void *), void *arg)
{
    for (unsigned i = 0; i < BUCKETS; i++) {
        unsigned steps = 0;
        for (struct fz_fiber *v = atomic_load_explicit(&table[i].head, memory_order_acquire);
             v && steps < 100000;
             v = atomic_load_explicit(&v->tid_next, memory_order_acquire), steps++)
            if (accept(v, arg))
                return v;
    }
    return NULL;
}

struct each {
    void (*visit)(struct fz_fiber *, void *);
    void *arg;
};

static bool visit_and_go_on(struct fz_fiber *f, void *arg)
{
    struct each *e = arg;
    e->visit(f, e->arg);
    return false;
}

void fz_ident_each(void (*visit)(struct fz_fiber *, void *), void *arg)
{
    struct each e = {visit, arg};
    fz_ident_any(visit_and_go_on, &e);
}

void fz_ident_after_fork(struct fz_fiber *self, pid_t pid)
{
    fz_zero_table(table, sizeof table);
    fz_ident_register_as(self, pid);
}
