/* glibc's thread internals, found at run time and checked (fills runtime/libc.h).
 *
 * struct pthread and ld.so's _rtld_global change between releases (2.34 to
 * 2.42 moved, added or removed a dozen fields), and a wrong offset would
 * corrupt a program silently.  So nothing here is one build's table.  Each
 * fact comes from what glibc itself publishes where it does, and otherwise
 * from a probe; and each one is checked against something glibc did to the
 * main thread or to one real probe thread started here and examined:
 *  - the _thread_db_* descriptors libc exports for debuggers ({bits, count,
 *    offset}, nptl_db/structs.def): struct pthread's size, list, tid,
 *    cancelhandling, specific, report_events, schedparam, schedpolicy,
 *    start_routine, nextevent; _rtld_global's dl_stack_used/user; the size
 *    of the key tables; __rseq_offset/__rseq_size (2.35+);
 *  - fields between those, by glibc's field order (the same in every
 *    release since 2.34 for what is used), each confirmed on a live thread:
 *    the robust list head where get_robust_list says the kernel has it,
 *    specific[0] pointing at specific_1stblock, the main thread's
 *    user_stack mark, the probe's stack block / size / guard sizes (its
 *    attribute asks for a guard no other field would hold), __resp
 *    pointing at its res, its __pthread_register_cancel buffer in
 *    cleanup_jmp_buf, its joinid after pthread_detach, the cancel-state
 *    byte or bit pthread_setcancelstate flips, and after it exits its stack
 *    on ld.so's stack cache with the cache lock free (which places
 *    dl_stack_cache_lock); the main thread's strsignal buffer in tls_state;
 *  - only three facts come from the version number, because no probe tells
 *    them apart before they matter: user_stack became the enum stack_mode
 *    in 2.42 (the main thread's value confirms it), getrandom_buf follows
 *    tls_state since 2.41, and _dl_allocate_tls_init's second argument
 *    means "init TLS" before 2.41 and "main thread" since.
 * Anything that does not hold turns the runtime off with one line naming
 * the glibc version and the fact.  A glibc newer than any checked here runs
 * fiberized when every check passes.  The probe's price: one thread start
 * at load time, its 272 KiB stack left in glibc's stack cache, and a
 * process that counts as multi-threaded (__libc_single_threaded false)
 * even when a check fails and the program then runs natively.
 *
 * Public objects: pthread_cond_t lost __g_refs in 2.41, moving __wrefs
 * (where pthread_cond_init keeps the pshared and clock bits) from byte 36
 * to 28; it is found by initialising a scratch condvar.  pthread_mutex_t,
 * pthread_rwlock_t, sem_t, pthread_barrier_t and pthread_attr_t are the same
 * from 2.34 to 2.42 (the sources' diffs touch no field), so their users do
 * not go through this seam.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <pthread.h>
#include <resolv.h>
#undef p_type /* resolv.h names a function so; the ELF field is meant here */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "runtime/libc.h"
#include "runtime/sys.h"

struct fz_libc fz_libc;

static char why_buf[200];

static bool refuse(const char **why, const char *fact)
{
    snprintf(why_buf, sizeof why_buf, "glibc %.15s: %.150s", fz_libc.version, fact);
    *why = why_buf;
    return false;
}

static void *thread_pointer(void)
{
    void *tp;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

/* One _thread_db_* descriptor: {size in bits, element count, offset}. */
static const uint32_t *descriptor(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

static bool field(const char *name, unsigned bits, unsigned count, ptrdiff_t *off)
{
    const uint32_t *d = descriptor(name);
    if (!d || d[0] != bits || d[1] != count)
        return false;
    *off = d[2];
    return true;
}

/* ---- the probe thread ------------------------------------------------- */

enum { PROBE_STACK = 256 * 1024, PROBE_GUARD = 3 * 4096 + 1 };

struct probe {
    char *tcb;
    char *local;                 /* an address on its stack */
    void *resp;                  /* its __res_state() */
    void *register_seen;         /* cleanup_jmp_buf while a buffer is registered */
    void *register_buf;          /* that buffer */
    ptrdiff_t state_byte;        /* what pthread_setcancelstate changed: a byte */
    int state_bit_changed;       /* or bit 0 of cancelhandling */
    bool state_other;            /* or something else too */
    bool joinid_ok;              /* joinid == self after pthread_detach */
    int tid_seen;                /* its tid field */
    int tid_real;                /* gettid */
    void *start_seen, *arg_seen; /* its start_routine and arg fields */
    int (*detach)(pthread_t);
    unsigned char snap[8192];
};

static void *probe_main(void *arg)
{
    struct probe *p = arg;
    volatile char here = 0;
    p->tcb = thread_pointer();
    p->local = (char *)&here;
    p->resp = __res_state();
    p->tid_real = (int)fz_sys0(SYS_gettid);
    p->tid_seen = FZ_AT(p->tcb, fz_libc.tid, int);
    p->start_seen = FZ_AT(p->tcb, fz_libc.start_routine, void *);
    p->arg_seen = FZ_AT(p->tcb, fz_libc.arg, void *);

    __pthread_unwind_buf_t buf;
    memset(&buf, 0, sizeof buf);
    p->register_buf = &buf;
    __pthread_register_cancel(&buf);
    p->register_seen = FZ_AT(p->tcb, fz_libc.cleanup_jmp_buf, void *);
    __pthread_unregister_cancel(&buf);

    /* which byte or bit of the TCB records "cancellation disabled" */
    size_t n = fz_libc.pd_size < sizeof p->snap ? fz_libc.pd_size : sizeof p->snap;
    memcpy(p->snap, p->tcb, n);
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    p->state_byte = -1;
    /* cppcheck takes fz_libc.pd_size for its zero initialiser; it is set by then */
    // cppcheck-suppress knownConditionTrueFalse
    for (size_t i = 0; i < n; i++) {
        unsigned char now = (unsigned char)p->tcb[i];
        if (now == p->snap[i])
            continue;
        if ((ptrdiff_t)i == fz_libc.cancelhandling && (now ^ p->snap[i]) == 1)
            p->state_bit_changed = 1;
        else if (p->state_byte < 0 && p->snap[i] == 0 && now == 1)
            p->state_byte = (ptrdiff_t)i;
        else
            p->state_other = true;
    }
    pthread_setcancelstate(old, NULL);

    p->detach(pthread_self());
    p->joinid_ok = FZ_AT(p->tcb, fz_libc.result - 8, void *) == p->tcb;
    return NULL;
}

/* Start the probe thread and wait until the kernel has cleared its tid
 * (CLONE_CHILD_CLEARTID): it has then queued its stack on ld.so's cache. */
static bool run_probe(const struct fz_os_thread_calls *os, struct probe *p)
{
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, PROBE_STACK);
    pthread_attr_setguardsize(&attr, PROBE_GUARD);
    p->detach = os->detach;
    int err = os->create(&t, &attr, probe_main, p);
    pthread_attr_destroy(&attr);
    if (err)
        return false;
    int *tid = (int *)((char *)t + fz_libc.tid);
    for (int i = 0; i < 5000; i++) {
        int seen = __atomic_load_n(tid, __ATOMIC_ACQUIRE);
        if (seen == 0 && p->tcb)
            return true;
        struct timespec ms = {0, 1000000};
        fz_sys4(SYS_futex, tid, FUTEX_WAIT, seen, &ms);
    }
    return false;
}

/* ---- the checks ------------------------------------------------------- */

static bool on_list(char *head, const char *node)
{
    char *n = *(char **)head;
    for (int i = 0; i < 4096 && n && n != head; i++, n = *(char **)n)
        if (n == node)
            return true;
    return false;
}

static int find_libc_tls(struct dl_phdr_info *info, size_t size, void *tp)
{
    (void)size;
    if (!info->dlpi_tls_modid || !info->dlpi_tls_data || !strstr(info->dlpi_name, "/libc.so.6"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            fz_libc.libc_tls_offset = (char *)tp - (char *)info->dlpi_tls_data;
            fz_libc.libc_tls_size = info->dlpi_phdr[i].p_memsz;
        }
    return 1;
}

static bool resolve(const char **why)
{
    struct fz_libc *l = &fz_libc;
    l->allocate_tls = dlsym(RTLD_DEFAULT, "_dl_allocate_tls");
    l->allocate_tls_init = dlsym(RTLD_DEFAULT, "_dl_allocate_tls_init");
    /* 2.35-2.40: (tcb, bool init_tls), true for a new thread; 2.41 inverted
     * it to (tcb, bool main_thread); 2.34 takes no second argument */
    l->tls_init_thread_arg = l->minor < 41;
    l->ctype_init = dlsym(RTLD_DEFAULT, "__ctype_init");
    l->call_tls_dtors = dlsym(RTLD_DEFAULT, "__call_tls_dtors");
    l->keys = dlsym(RTLD_DEFAULT, "__pthread_keys");
    l->rtld_global = dlsym(RTLD_DEFAULT, "_rtld_global");
    void **resp = dlsym(RTLD_DEFAULT, "__resp");
    const char *missing = !l->allocate_tls        ? "_dl_allocate_tls"
                          : !l->allocate_tls_init ? "_dl_allocate_tls_init"
                          : !l->ctype_init        ? "__ctype_init"
                          : !l->call_tls_dtors    ? "__call_tls_dtors"
                          : !l->keys              ? "__pthread_keys"
                          : !l->rtld_global       ? "_rtld_global"
                          : !resp                 ? "__resp"
                                                  : NULL;
    if (missing) {
        snprintf(why_buf, sizeof why_buf, "glibc %.15s: symbol %.40s not found", l->version,
                 missing);
        return *why = why_buf, false;
    }
    l->resp = (char *)resp - (char *)thread_pointer();
    /* rseq: 2.35+; 2.34 registers none */
    const ptrdiff_t *rseq_off = dlsym(RTLD_DEFAULT, "__rseq_offset");
    const unsigned *rseq_size = dlsym(RTLD_DEFAULT, "__rseq_size");
    l->rseq_offset = rseq_off ? *rseq_off : 0;
    l->rseq_size = rseq_off && rseq_size ? *rseq_size : 0;
    return true;
}

/* Offsets glibc publishes for debuggers, and what follows from them. */
static bool published(const char **why)
{
    struct fz_libc *l = &fz_libc;
    const uint32_t *size = descriptor("_thread_db_sizeof_pthread");
    if (!size || *size < 1024 || *size > 8192)
        return refuse(why, "_thread_db_sizeof_pthread missing or implausible");
    l->pd_size = *size;
    ptrdiff_t dtvp, sched_priority, schedpolicy, nextevent, keys;
    if (!field("_thread_db_pthread_dtvp", 64, 1, &dtvp) || dtvp != 8)
        return refuse(why, "tcbhead_t dtv is not at 8");
    if (!field("_thread_db_pthread_list", 128, 1, &l->list))
        return refuse(why, "struct pthread field list: no descriptor");
    if (!field("_thread_db_pthread_tid", 32, 1, &l->tid))
        return refuse(why, "struct pthread field tid: no descriptor");
    if (!field("_thread_db_pthread_cancelhandling", 32, 1, &l->cancelhandling))
        return refuse(why, "struct pthread field cancelhandling: no descriptor");
    if (!field("_thread_db_pthread_specific", 64 * 32, 1, &l->specific))
        return refuse(why, "struct pthread field specific: no descriptor");
    if (!field("_thread_db_pthread_report_events", 8, 1, &l->report_events))
        return refuse(why, "struct pthread field report_events: no descriptor");
    if (!field("_thread_db_pthread_schedparam_sched_priority", 32, 1, &sched_priority) ||
        !field("_thread_db_pthread_schedpolicy", 32, 1, &schedpolicy) ||
        !field("_thread_db_pthread_start_routine", 64, 1, &l->start_routine) ||
        !field("_thread_db_pthread_nextevent", 64, 1, &nextevent))
        return refuse(why, "struct pthread fields schedparam..nextevent: no descriptor");
    const uint32_t *key_data = descriptor("_thread_db_sizeof_pthread_key_data");
    const uint32_t *level2 = descriptor("_thread_db_pthread_key_data_level2_data");
    if (!field("_thread_db___pthread_keys", 128, 1024, &keys) || !key_data || *key_data != 16 ||
        !level2 || level2[1] != 32)
        return refuse(why, "__pthread_keys: not 1024 keys in blocks of 32");
    l->keys_max = 1024;
    l->key_2nd_level = 32;
    ptrdiff_t used, user;
    if (!field("_thread_db_rtld_global__dl_stack_used", 128, 1, &used) ||
        !field("_thread_db_rtld_global__dl_stack_user", 128, 1, &user) || user != used + 16)
        return refuse(why, "_rtld_global dl_stack_used/dl_stack_user: no descriptor");
    l->stack_used = used;
    l->stack_user = user;
    /* then dl_stack_cache (list), dl_stack_cache_actsize, dl_in_flight_stack,
     * dl_stack_cache_lock: confirmed with the probe thread's stack */
    l->stack_cache_lock = user + 16 + 16 + 8 + 8;

    /* glibc's order: ... robust_head {list, futex_offset, op_pending},
     * cleanup, cleanup_jmp_buf, cancelhandling, flags, specific_1stblock[32],
     * specific[32], specific_used, report_events, user_stack ... */
    l->cleanup_jmp_buf = l->cancelhandling - 8;
    l->specific_1stblock = l->cancelhandling + 8;
    if (l->specific_1stblock + 32 * 16 != l->specific)
        return refuse(why, "struct pthread fields flags..specific not in glibc's order");
    l->specific_used = l->specific + 32 * 8;
    if (l->specific_used + 1 != l->report_events)
        return refuse(why, "struct pthread field specific_used not before report_events");
    if (l->minor >= 42) { /* enum allocate_stack_mode_t stack_mode */
        l->user_stack = (l->report_events + 1 + 3) & ~(ptrdiff_t)3;
        l->user_stack_size = 4;
        l->user_stack_value = 2; /* ALLOCATE_GUARD_USER */
    } else {
        l->user_stack = l->report_events + 1;
        l->user_stack_size = 1;
        l->user_stack_value = 1;
    }
    /* ... joinid, result, schedparam, schedpolicy, start_routine, arg,
     * eventbuf, nextevent, exc (_Unwind_Exception, 32 bytes, 16-aligned),
     * stackblock, stackblock_size, guardsize, reported_guardsize, tpp, res */
    l->result = sched_priority - 8;
    l->arg = l->start_routine + 8;
    if (schedpolicy != sched_priority + 4 || l->start_routine != ((schedpolicy + 4 + 7) & ~7))
        return refuse(why, "struct pthread fields schedparam..start_routine not in glibc's order");
    l->stackblock = ((nextevent + 8 + 15) & ~(ptrdiff_t)15) + 32;
    l->stackblock_size = l->stackblock + 8;
    l->guardsize = l->stackblock + 16;
    l->reported_guardsize = l->stackblock + 24;
    l->tpp = l->stackblock + 32; /* the one slot between two checked ones */
    l->res = l->stackblock + 40;
    return true;
}

/* tls_state {strsignal_buf, strerror_l_buf} follows res.  strsignal of an
 * unknown signal mallocs its text there.  Found on the main thread, not the
 * probe: the probe's first malloc would give the process a second malloc
 * arena for good, a 64 MiB reservation and two more pages that every later
 * fork copies and writes in parent and child.  The buffer is freed and the
 * field cleared again, as if strsignal had never run. */
static bool main_thread_tls_state(char *tp, const char **why)
{
    struct fz_libc *l = &fz_libc;
    int saved = errno;
    char *buf = strsignal(4095);
    errno = saved;
    l->tls_state = -1;
    for (size_t off = (size_t)l->res + sizeof(struct __res_state); buf && off + 16 <= l->pd_size;
         off += 8)
        if (FZ_AT(tp, off, char *) == buf) {
            l->tls_state = (ptrdiff_t)off;
            break;
        }
    if (l->tls_state < 0)
        return refuse(why, "struct pthread field tls_state does not hold strsignal's buffer");
    free(buf);
    FZ_AT(tp, l->tls_state, char *) = NULL;
    return true;
}

/* What glibc did to the main thread. */
static bool main_thread(const char **why)
{
    struct fz_libc *l = &fz_libc;
    char *tp = thread_pointer();
    if (FZ_AT(tp, 0x10, void *) != tp)
        return refuse(why, "tcbhead_t self is not the thread pointer");
    if (FZ_AT(tp, l->tid, int) != (int)fz_sys0(SYS_gettid))
        return refuse(why, "struct pthread field tid does not hold the main thread's tid");
    void *robust = NULL;
    size_t len;
    if (fz_sys3(SYS_get_robust_list, 0, &robust, &len) != 0 || len != 24)
        return refuse(why, "get_robust_list failed for the main thread");
    l->robust_head = (char *)robust - tp;
    l->robust_prev = l->robust_head - 8;
    if (l->robust_head < l->tid || l->robust_head + 24 + 16 != l->cancelhandling ||
        FZ_AT(tp, l->robust_prev, void *) != robust)
        return refuse(why, "struct pthread field robust_head is not where the kernel has it");
    l->robust_futex_offset = FZ_AT(tp, l->robust_head + 8, long);
    if (FZ_AT(tp, l->specific, char *) != tp + l->specific_1stblock)
        return refuse(why, "struct pthread field specific_1stblock: specific[0] points elsewhere");
    int mark = l->user_stack_size == 1 ? FZ_AT(tp, l->user_stack, unsigned char)
                                       : FZ_AT(tp, l->user_stack, int);
    if (mark != l->user_stack_value)
        return refuse(why, "struct pthread field user_stack: the main thread's is not set");
    if (!on_list(l->rtld_global + l->stack_user, tp + l->list))
        return refuse(why, "_rtld_global dl_stack_user does not hold the main thread");
    if (l->rseq_size) {
        /* registered: the kernel keeps cpu_id current */
        bool ok = false;
        for (int i = 0; i < 20 && !ok; i++) {
            unsigned cpu = ~0u;
            fz_sys3(SYS_getcpu, &cpu, NULL, NULL);
            ok = FZ_AT(tp, l->rseq_offset + 4, unsigned) == cpu;
        }
        if (!ok)
            return refuse(why, "__rseq_offset: cpu_id there is not the current CPU");
    }
    dl_iterate_phdr(find_libc_tls, tp);
    if (!l->libc_tls_size)
        return refuse(why, "libc's TLS block not found");
    return main_thread_tls_state(tp, why);
}

/* The start routine and argument glibc keeps for the probe thread.  Under
 * AddressSanitizer (make check-asan), when its pthread_create interceptor
 * is the one called, every thread starts with a routine of libasan's and
 * the interceptor's own record as the argument: the fields hold those. */
static bool start_fields_hold(const struct probe *p)
{
    if (p->start_seen == (void *)probe_main && p->arg_seen == p)
        return true;
#ifdef FZ_ASAN
    Dl_info where;
    return p->arg_seen && dladdr(p->start_seen, &where) && where.dli_fname &&
           strstr(where.dli_fname, "libasan");
#else
    return false;
#endif
}

/* What glibc did to a thread it created itself. */
static bool probe_thread(const struct fz_os_thread_calls *os, const char **why)
{
    struct fz_libc *l = &fz_libc;
    static struct probe p; /* big: not on the caller's stack */
    memset(&p, 0, sizeof p);
    if (!run_probe(os, &p))
        return refuse(why, "the probe thread did not start or end");
    if (p.tid_seen != p.tid_real)
        return refuse(why, "struct pthread field tid does not hold a new thread's tid");
    if (!start_fields_hold(&p))
        return refuse(why, "struct pthread fields start_routine/arg do not hold a new thread's");
    char *tp = thread_pointer();
    if (FZ_AT(p.tcb, 0x28, uintptr_t) != FZ_AT(tp, 0x28, uintptr_t) ||
        FZ_AT(p.tcb, 0x30, uintptr_t) != FZ_AT(tp, 0x30, uintptr_t))
        return refuse(why, "tcbhead_t stack_guard/pointer_guard differ between threads");
    char *block = FZ_AT(p.tcb, l->stackblock, char *);
    size_t block_size = FZ_AT(p.tcb, l->stackblock_size, size_t);
    if (!(block < p.local && p.local < block + block_size && block < p.tcb &&
          p.tcb < block + block_size && block_size >= PROBE_STACK))
        return refuse(why,
                      "struct pthread fields stackblock/stackblock_size do not hold its stack");
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t guard = (PROBE_GUARD + page - 1) / page * page; /* glibc rounds both */
    size_t reported = FZ_AT(p.tcb, l->reported_guardsize, size_t);
    if ((reported != PROBE_GUARD && reported != guard) ||
        FZ_AT(p.tcb, l->guardsize, size_t) != guard)
        return refuse(why,
                      "struct pthread fields guardsize/reported_guardsize do not hold its guard");
    if ((char *)p.resp != p.tcb + l->res)
        return refuse(why, "struct pthread field res is not where __resp points");
    if (p.register_seen != p.register_buf)
        return refuse(why, "struct pthread field cleanup_jmp_buf is not before cancelhandling");
    if (!p.joinid_ok)
        return refuse(why, "struct pthread field joinid/result is not before schedparam");
    if (p.state_other || (p.state_bit_changed && p.state_byte >= 0) ||
        (!p.state_bit_changed && p.state_byte < 0))
        return refuse(why, "cancel state: pthread_setcancelstate changed more than one flag");
    l->cancelstate = p.state_bit_changed ? -1 : p.state_byte;
    l->getrandom_buf = -1;
    if (l->minor >= 41) {
        l->getrandom_buf = l->tls_state + 16;
        if ((size_t)l->getrandom_buf + 8 > l->pd_size)
            return refuse(why, "struct pthread field getrandom_buf past the end");
    }
    /* its stack is on ld.so's cache now, which places the lock after it */
    char *cache = l->rtld_global + l->stack_user + 16;
    size_t actsize = *(size_t *)(cache + 16);
    uintptr_t in_flight = *(uintptr_t *)(cache + 24);
    int lock = *(int *)(l->rtld_global + l->stack_cache_lock);
    if (!on_list(cache, p.tcb + l->list) || actsize < block_size || in_flight != 0 || lock != 0)
        return refuse(why,
                      "_rtld_global dl_stack_cache..dl_stack_cache_lock not after dl_stack_user");
    return true;
}

static bool public_objects(const char **why)
{
    pthread_condattr_t a;
    pthread_cond_t c;
    pthread_condattr_init(&a);
    pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    memset(&c, 0xff, sizeof c);
    pthread_cond_init(&c, &a);
    pthread_condattr_destroy(&a);
    fz_libc.cond_flags = 0;
    for (size_t off = 0; off < sizeof c; off += 4)
        if (FZ_AT(&c, off, unsigned) == 3) { /* pshared bit 0, monotonic bit 1 */
            if (fz_libc.cond_flags)
                return refuse(why, "pthread_cond_t: pshared/clock bits not found");
            fz_libc.cond_flags = off;
        }
    if (!fz_libc.cond_flags)
        return refuse(why, "pthread_cond_t: pshared/clock bits not found");
    return true;
}

bool fz_libc_setup(const struct fz_os_thread_calls *os, const char **why)
{
    const char *v = gnu_get_libc_version();
    snprintf(fz_libc.version, sizeof fz_libc.version, "%s", v);
    unsigned major = 0, minor = 0;
    if (sscanf(v, "%u.%u", &major, &minor) != 2 || major != 2 || minor < 34)
        return refuse(why, "older than 2.34, not supported");
    fz_libc.minor = minor;
    return resolve(why) && published(why) && main_thread(why) && public_objects(why) &&
           probe_thread(os, why);
}

/* ---- ld.so's thread lists ---------------------------------------------- */

struct list_node {
    struct list_node *next, *prev;
};

bool fz_libc_stack_list_trylock(unsigned spins)
{
    atomic_int *l = (atomic_int *)(fz_libc.rtld_global + fz_libc.stack_cache_lock);
    for (unsigned i = 0; i < spins; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(l, &expected, 1))
            return true;
        fz_cpu_relax();
    }
    return false;
}

void fz_libc_stack_list_lock(void)
{
    if (fz_libc_stack_list_trylock(1))
        return;
    atomic_int *l = (atomic_int *)(fz_libc.rtld_global + fz_libc.stack_cache_lock);
    while (atomic_exchange(l, 2) != 0)
        fz_sys4(SYS_futex, l, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, 0);
}

void fz_libc_stack_list_unlock(void)
{
    atomic_int *l = (atomic_int *)(fz_libc.rtld_global + fz_libc.stack_cache_lock);
    if (atomic_exchange(l, 0) == 2)
        fz_futex_wake(l, 1);
}

void fz_libc_link_tcb(void *tcb)
{
    struct list_node *head = (struct list_node *)(fz_libc.rtld_global + fz_libc.stack_user);
    struct list_node *n = &FZ_AT(tcb, fz_libc.list, struct list_node);
    fz_libc_stack_list_lock();
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    atomic_thread_fence(memory_order_release);
    head->next = n;
    fz_libc_stack_list_unlock();
}

void *fz_libc_find_tcb(bool (*pick)(void *tcb, void *arg), void *arg)
{
    const size_t lists[] = {fz_libc.stack_used, fz_libc.stack_user};
    for (int l = 0; l < 2; l++) {
        struct list_node *head = (struct list_node *)(fz_libc.rtld_global + lists[l]);
        for (struct list_node *n = head->next; n && n != head; n = n->next) {
            void *tcb = (char *)n - fz_libc.list;
            if (pick(tcb, arg))
                return tcb;
        }
    }
    return NULL;
}
