/* Fiber life cycle: create, run, exit, reap, recycle.
 *
 * A fiber and its TCB stay paired for life: finished fibers go to a pool
 * and come back with a recycled TCB (runtime/tls_glibc.c), which keeps glibc's
 * per-thread malloc state instead of leaking it, and costs no syscall.
 *
 * Exit happens in two halves.  On the fiber: TLS and key destructors, the
 * live count, then a last switch away (fz_exit_switch).  On the next
 * context of the same carrier (fz_fiber_reap): the stack goes back to the
 * carrier's cache -- it could not be released while still in use -- and
 * only then does exit_word become FZ_EXIT_REAPED and joiners wake, so a
 * joiner never recycles a fiber that is still on its way out.
 *
 * `lock` orders detach, join and reap: whoever comes last frees the fiber.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include "runtime/sigmask.h"
#include "runtime/sigthread.h"
#include "runtime/fiber.h"
#include "runtime/identity.h"
#include "runtime/affinity.h"
#include "runtime/altstack.h"
#include "runtime/park.h"
#include "runtime/sched.h"
#include "runtime/tls.h"

int (*fz_os_thread_getattr)(pthread_t, pthread_attr_t *);

static fz_spinlock pool_lock;
static struct fz_task *pool_head; /* free fibers, linked through task.next */
static atomic_uint_least64_t next_id;
static _Atomic(struct fz_fiber *) all_fibers;

static void register_fiber(struct fz_fiber *f)
{
    struct fz_fiber *head = atomic_load(&all_fibers);
    do
        f->all_next = head;
    while (!atomic_compare_exchange_weak(&all_fibers, &head, f));
}

struct fz_fiber *fz_fiber_all(void)
{
    return atomic_load_explicit(&all_fibers, memory_order_acquire);
}

/* Zero a recycled fiber but for what outlives its uses: the TCB, the
 * registry link, dump_hold (a dump may hold the struct right now) and the
 * state, which stays DONE throughout -- zeroed, it would read as RUNNABLE
 * (0) to a dump walking the registry meanwhile, which then listed the
 * half-made fiber, id 0 and all (two such made "a fiber listed twice"). */
static void fiber_clear(struct fz_fiber *f)
{
    void *tcb = f->tcb;
    cpu_set_t *affinity = f->affinity; /* a buffer, kept for the next one */
    struct fz_fiber *all_next = f->all_next;
    __atomic_store_n(&f->state, FZ_FIBER_DONE, __ATOMIC_RELEASE);
    size_t hold = offsetof(struct fz_fiber, dump_hold), after_hold = hold + sizeof f->dump_hold;
    size_t state = offsetof(struct fz_fiber, state), after_state = state + sizeof f->state;
    _Static_assert(offsetof(struct fz_fiber, dump_hold) < offsetof(struct fz_fiber, state),
                   "fiber_clear zeroes around dump_hold, then around state");
    memset(f, 0, hold);
    memset((char *)f + after_hold, 0, state - after_hold);
    memset((char *)f + after_state, 0, sizeof *f - after_state);
    f->tcb = tcb;
    f->affinity = affinity;
    f->all_next = all_next;
}

void *fz_ctx_prepare(struct fz_stack *stack, void (*entry)(void *), void *arg)
{
    uintptr_t top = (uintptr_t)fz_stack_top(stack) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 64);
    uint32_t mxcsr;
    uint16_t x87cw;
    __asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mxcsr), "=m"(x87cw));
    sp[0] = mxcsr | ((uint64_t)x87cw << 32);
    sp[1] = 0;                /* r15 */
    sp[2] = 0;                /* r14 */
    sp[3] = (uintptr_t)entry; /* r13 */
    sp[4] = (uintptr_t)arg;   /* r12 */
    sp[5] = 0;                /* rbx */
    sp[6] = 0;                /* rbp */
    sp[7] = (uintptr_t)fz_fiber_trampoline;
    return sp;
}

static struct fz_fiber *pool_take(void)
{
    fz_spin_lock(&pool_lock);
    struct fz_task *t = pool_head;
    if (t)
        pool_head = t->next;
    fz_spin_unlock(&pool_lock);
    return t ? fz_fiber_of_task(t) : NULL;
}

void fz_fiber_free(struct fz_fiber *f)
{
    if (f->is_main)
        return;
    fz_spin_lock(&pool_lock);
    f->task.next = pool_head;
    pool_head = &f->task;
    fz_spin_unlock(&pool_lock);
}

/* A fiber struct with a fresh or recycled TCB. */
static struct fz_fiber *fiber_alloc(void)
{
    struct fz_fiber *f = pool_take();
    if (f) {
        fiber_clear(f);
        fz_tls_recycle(f->tcb, f);
        return f;
    }
    f = aligned_alloc(FZ_CACHE_LINE, sizeof *f);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    f->state = FZ_FIBER_DONE;
    f->tcb = fz_tls_create(f);
    if (!f->tcb) {
        free(f);
        return NULL;
    }
    register_fiber(f);
    return f;
}

static struct fz_stack_cache *local_stack_cache(void)
{
    struct fz_fiber *self = fz_self();
    return self ? &self->carrier->stacks : NULL;
}

static int give_stack(struct fz_fiber *f, const struct fz_fiber_attr *a)
{
    if (a->user_stack) {
        f->stack = (struct fz_stack){a->user_stack, a->user_stack_size, 0, true};
        return 0;
    }
    size_t size = a->stack_size ? a->stack_size : fz_stack_default_size();
    size_t guard = a->guard_size != (size_t)-1 ? a->guard_size : fz_stack_default_guard();
    return fz_stack_alloc(local_stack_cache(), size, guard, &f->stack);
}

/* New threads start with the creator's name, as they do natively. */
static void inherit_name(struct fz_fiber *f)
{
    struct fz_fiber *self = fz_self();
    if (self)
        memcpy(f->name, self->name, sizeof f->name);
    else /* the kernel's name of the thread: prctl is interposed */
        fz_sys2(SYS_prctl, PR_GET_NAME, (long)f->name);
}

/* ...and its scheduling policy (PTHREAD_INHERIT_SCHED).  The creator's
 * record is written only by the creator, which is running this. */
static void inherit_sched(struct fz_fiber *f, const struct fz_fiber *creator)
{
    f->sched_known = creator && creator->sched_known;
    f->sched_policy = f->sched_known ? creator->sched_policy : 0;
    f->sched_priority = f->sched_known ? creator->sched_priority : 0;
    /* glibc copies its pthread-level copy too, flags and all */
    f->sched_cached = creator ? creator->sched_cached : 0;
    f->cached_policy = creator ? creator->cached_policy : 0;
    f->cached_priority = creator ? creator->cached_priority : 0;
}

int fz_fiber_create(void *(*start)(void *), void *arg, const struct fz_fiber_attr *a,
                    struct fz_fiber **out)
{
    struct fz_fiber *f = fiber_alloc();
    if (!f)
        return EAGAIN;
    int err = give_stack(f, a);
    if (err) {
        fz_fiber_free(f);
        return err;
    }
    fz_tcb_set_stack(f->tcb, f->stack.base, f->stack.size, f->stack.guard);
    f->id = atomic_fetch_add(&next_id, 1) + 1;
    f->start = start;
    f->arg = arg;
    f->detached = a->detached;
    f->created_at = a->created_at;
    inherit_name(f);
    /* a new thread starts with its creator's signal mask */
    struct fz_fiber *creator = fz_self();
    inherit_sched(f, creator);
    fz_sigmask_fiber_born(f, creator ? creator->sigmask : fz_sigmask_current_kernel());
    f->sp = fz_ctx_prepare(&f->stack, fz_fiber_main, f);
    __atomic_store_n(&f->state, FZ_FIBER_RUNNABLE, __ATOMIC_RELEASE); /* a dump may read it now */
    fz_altstack_init(f, false);
    fz_affinity_inherit(f, creator);
    fz_ident_register(f);
    atomic_fetch_add(&fz_rt.live_fibers, 1);
    struct fz_fiber *self = fz_self();
    if (self)
        self->carrier->stats.fibers_created++;
    *out = f;
    return 0;
}

struct fz_fiber *fz_fiber_adopt_main(void)
{
    void *addr;
    size_t size, guard;
    if (!fz_tls_main_stack(&addr, &size, &guard)) {
        pthread_attr_t attr;
        if (fz_os_thread_getattr(pthread_self(), &attr) != 0)
            return NULL;
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_getguardsize(&attr, &guard);
        pthread_attr_destroy(&attr);
    }
    struct fz_fiber *m = aligned_alloc(FZ_CACHE_LINE, sizeof *m);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->guard_requested = guard;
    m->stack = (struct fz_stack){addr, size, 0, true};
    m->tcb = fz_thread_pointer();
    m->is_main = true;
    m->id = atomic_fetch_add(&next_id, 1) + 1;
    /* the kernel's name of the thread: prctl is interposed */
    fz_sys2(SYS_prctl, PR_GET_NAME, (long)m->name);
    fz_tls_adopt_main(m);
    m->entered = true;
    fz_altstack_init(m, true);
    fz_ident_register(m);
    register_fiber(m);
    return m;
}

void fz_fiber_main(void *arg)
{
    struct fz_fiber *f = arg;
    fz_sched_resumed(f);
    fz_tls_enter();
    /* signals sent before it started run now, on its own TLS */
    f->entered = true;
    fz_sigthread_resumed(f);
    fz_tls_run_body(f->tcb, f->start, f->arg);
    fz_fiber_exit(fz_tls_current_fiber());
}

void fz_fiber_exit(struct fz_fiber *self)
{
    fz_tls_exit();
    fz_ident_unregister(self);
    fz_sigmask_fiber_gone(self);
    struct fz_carrier *c = self->carrier;
    c->stats.fibers_exited++;
    if (atomic_fetch_sub(&fz_rt.live_fibers, 1) == 1)
        exit(0); /* the last thread ends the process (main called pthread_exit) */
    fz_exit_switch(self);
}

void fz_fiber_reap(struct fz_carrier *c, struct fz_fiber *f)
{
    if (!f->stack.user) {
        atomic_store_explicit(&c->releasing_stack, 1, memory_order_relaxed);
        fz_stack_release(&c->stacks, &f->stack);
        atomic_store_explicit(&c->releasing_stack, 0, memory_order_relaxed);
    }
    fz_spin_lock(&f->lock);
    atomic_store(&f->exit_word, FZ_EXIT_REAPED);
    bool detached = f->detached;
    fz_spin_unlock(&f->lock);
    if (detached)
        fz_fiber_free(f);
    else
        fz_unpark_addr_on(c, &f->exit_word, ~0u, ~0u);
}

void fz_fiber_after_fork(struct fz_fiber *self)
{
    /* pooled fibers' TCBs left glibc's thread list in the child: drop them */
    pool_lock = (fz_spinlock){0};
    pool_head = NULL;
    /* the other fibers do not exist here: a dump must not list them */
    self->all_next = NULL;
    atomic_store(&all_fibers, self);
}
