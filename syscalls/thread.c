/* Threads become fibers: pthread_create & co and C11 threads.
 *
 * A pthread_t made here is the fiber's TCB, so glibc's own pthread_self,
 * pthread_equal, keys (pthread_key_*, tss_*), cleanup handlers and
 * pthread_cancel's deferred mode work on fibers unchanged and are not
 * interposed.  What is interposed either creates, waits for or names a
 * thread, or would hand the fake tid of a fiber to the kernel.  A pthread_t
 * that is not a fiber (a thread created while the thread family is off, or
 * by libc internally) always goes to the real function.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "runtime/affinity.h"
#include "runtime/asan.h"
#include "runtime/park.h"
#include "runtime/tls.h"
#include "syscalls/hook.h"
#include "syscalls/ident.h"
#include "syscalls/thread_libc.h"

static struct fz_fiber *fiber_of(pthread_t th)
{
    if (!fz_rt.active || !th)
        return NULL;
    return fz_tcb_fiber((void *)th);
}

FZ_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*start)(void *),
                             void *arg)
{
    fz_fork_resume(); /* a fork child's first thread: its runtime now (preload/init.c) */
    if (!fz_hook_active(FZ_HOOK_THREAD))
        return fz_real.pthread_create(th, attr, start, arg);
    struct fz_fiber_attr a;
    fz_read_thread_attr(attr, &a);
    a.created_at = __builtin_return_address(0);
    struct fz_fiber *f;
    int err = fz_fiber_create(start, arg, &a, &f);
    if (err)
        return err;
    /* glibc and musl report no guard for a stack the caller provides */
    if (a.user_stack)
        f->guard_requested = 0;
    else
        f->guard_requested = a.guard_size == (size_t)-1 ? f->stack.guard : a.guard_size;
    *th = (pthread_t)f->tcb;
    fz_spawn(f);
    return fz_schedule_point_after(0); /* the new thread may run first */
}

/* ---- joining --------------------------------------------------------- */

static bool not_reaped(void *fiber)
{
    struct fz_fiber *f = fiber;
    return atomic_load(&f->exit_word) != FZ_EXIT_REAPED;
}

/* Claim the right to join f.  0, or the errno glibc gives. */
static int claim_join(struct fz_fiber *f)
{
    if (f == fz_self())
        return EDEADLK;
    int err = 0;
    fz_spin_lock(&f->lock);
    if (f->detached || f->joined)
        err = EINVAL;
    else
        f->joined = true;
    fz_spin_unlock(&f->lock);
    return err;
}

static void unclaim_join(struct fz_fiber *f)
{
    fz_spin_lock(&f->lock);
    f->joined = false;
    fz_spin_unlock(&f->lock);
}

static int collect(struct fz_fiber *f, void **ret)
{
    if (ret)
        *ret = *fz_tcb_result_slot(f->tcb);
    fz_fiber_free(f);
    return 0;
}

/* deadline: 0 = forever; try: do not wait at all. */
static int join_fiber(struct fz_fiber *f, void **ret, uint64_t deadline, bool try)
{
    int err = claim_join(f);
    if (err)
        return err;
    while (not_reaped(f)) {
        if (try) {
            unclaim_join(f);
            return EBUSY;
        }
        int w = fz_park_addr(&f->exit_word, ~0u, not_reaped, f, deadline, FZ_INTR_CANCEL);
        if (w == EINTR) { /* cancelled: the thread stays joinable */
            unclaim_join(f);
            fz_cancel_point();
            if (claim_join(f))
                return EINVAL;
        }
        if (w == ETIMEDOUT && not_reaped(f)) {
            unclaim_join(f);
            return ETIMEDOUT;
        }
    }
    return collect(f, ret);
}

bool fz_cancel_requested_ever; /* hook.h */

/* glibc cancels by signalling the target's tid, which a fiber does not
 * have: record the request in the fiber's TCB as glibc does, and end its
 * wait if it is parked at a cancellation point (runtime/park.h).  Deferred
 * cancellation only: an asynchronous cancel type acts at the next
 * cancellation point. */
FZ_EXPORT int pthread_cancel(pthread_t th)
{
    /* stored before the request is made: a thread that sees the request
     * (its TCB's cancel bits, or the wake that ends its wait) sees this */
    __atomic_store_n(&fz_cancel_requested_ever, true, __ATOMIC_SEQ_CST);
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_cancel(th);
    if (f == fz_self())
        return fz_cancel_self(th);
    if (fz_tcb_request_cancel(f->tcb))
        fz_cancel_wake(f);
    return 0;
}

FZ_EXPORT int pthread_join(pthread_t th, void **ret)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_join(th, ret);
    fz_schedule_point();
    return join_fiber(f, ret, 0, false);
}

FZ_EXPORT int pthread_tryjoin_np(pthread_t th, void **ret)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_tryjoin_np(th, ret);
    return join_fiber(f, ret, 0, true);
}

static int clock_join(struct fz_fiber *f, void **ret, clockid_t clock, const struct timespec *abs)
{
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return EINVAL;
    if (!abs)
        return join_fiber(f, ret, 0, false);
    if (!fz_timespec_valid(abs))
        return not_reaped(f) ? EINVAL : join_fiber(f, ret, 0, false);
    return join_fiber(f, ret, fz_abs_to_deadline(clock, abs), false);
}

FZ_EXPORT int pthread_timedjoin_np(pthread_t th, void **ret, const struct timespec *abs)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_timedjoin_np(th, ret, abs);
    return clock_join(f, ret, CLOCK_REALTIME, abs);
}

FZ_EXPORT int pthread_clockjoin_np(pthread_t th, void **ret, clockid_t clock,
                                   const struct timespec *abs)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_clockjoin_np(th, ret, clock, abs);
    return clock_join(f, ret, clock, abs);
}

FZ_EXPORT int pthread_detach(pthread_t th)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_detach(th);
    fz_spin_lock(&f->lock);
    if (f->detached || f->joined) {
        fz_spin_unlock(&f->lock);
        return EINVAL;
    }
    bool reaped = !not_reaped(f);
    f->detached = true;
    fz_spin_unlock(&f->lock);
    if (reaped)
        fz_fiber_free(f);
    return 0;
}

FZ_EXPORT void pthread_exit(void *value)
{
    fz_fork_resume(); /* the forking fiber's unwinding ends in the runtime */
    fz_schedule_point();
    struct fz_fiber *self = fz_self();
    if (self && self->is_main && !fz_rt.main_unwind_ready) {
        /* no unwind point below main: end the main fiber without unwinding */
        *fz_tcb_result_slot(self->tcb) = value;
        fz_tls_exit();
        atomic_store(&fz_rt.main_exited, true);
        fz_fiber_exit(self);
    }
    if (!self)
        fz_real.pthread_exit(value);
    /* to fz_tls_run_body in fz_fiber_main, or in main's (preload/init.c) */
    fz_asan_no_return();
    fz_tls_thread_exit(value, fz_real.pthread_exit);
}

/* ---- attributes, names, signals ------------------------------------- */

/* Built from the fiber: glibc's would hand the fiber's fake tid to
 * sched_getaffinity (ESRCH), the main fiber's too.  The main thread's stack
 * and guard are what glibc reported when it was adopted. */
FZ_EXPORT int pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_getattr_np(th, attr);
    int err = pthread_attr_init(attr);
    if (err)
        return err;
    pthread_attr_setstack(attr, f->stack.base, f->stack.size);
    pthread_attr_setguardsize(attr, f->guard_requested);
    pthread_attr_setdetachstate(attr,
                                f->detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
    cpu_set_t cpus;
    if (fz_affinity_get(f, sizeof cpus, &cpus) == 0)
        fz_attr_set_affinity(attr, &cpus);
    return 0;
}

/* Names live in the fiber: the kernel's per-thread name belongs to the
 * carrier, which runs many fibers. */
FZ_EXPORT int pthread_setname_np(pthread_t th, const char *name)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_setname_np(th, name);
    size_t n = strlen(name);
    if (n >= sizeof f->name)
        return ERANGE;
    fz_spin_lock(&f->lock);
    memcpy(f->name, name, n + 1);
    fz_spin_unlock(&f->lock);
    if (f->is_main) /* ps and /proc/self/comm show the main thread's name */
        fz_name_main_thread(name);
    return 0;
}

FZ_EXPORT int pthread_getname_np(pthread_t th, char *buf, size_t len)
{
    struct fz_fiber *f = fiber_of(th);
    if (!f)
        return fz_real.pthread_getname_np(th, buf, len);
    int err = 0;
    fz_spin_lock(&f->lock);
    size_t n = strlen(f->name);
    if (len < n + 1)
        err = ERANGE;
    else
        memcpy(buf, f->name, n + 1);
    fz_spin_unlock(&f->lock);
    return err;
}

/* ---- once ------------------------------------------------------------ */

enum { ONCE_NEW = 0, ONCE_RUNNING = 1, ONCE_DONE = 2 };

static bool once_running(void *word)
{
    return (atomic_load((atomic_int *)word) & 3) == ONCE_RUNNING;
}

static void once_publish(atomic_int *word, int state)
{
    atomic_store(word, state);
    fz_unpark_addr(word, ~0u, UINT_MAX);
    fz_futex_wake(word, INT_MAX); /* threads waiting in glibc's own pthread_once */
}

static void once_abandoned(void *word)
{
    once_publish(word, ONCE_NEW);
}

FZ_EXPORT int pthread_once(pthread_once_t *once, void (*init)(void))
{
    if (!fz_hook_active(FZ_HOOK_THREAD))
        return fz_real.pthread_once(once, init);
    atomic_int *word = (atomic_int *)once;
    for (;;) {
        int v = atomic_load_explicit(word, memory_order_acquire);
        if (v & ONCE_DONE)
            return 0;
        if ((v & 3) == ONCE_NEW) {
            if (!atomic_compare_exchange_strong(word, &v, ONCE_RUNNING))
                continue;
            /* init may end the thread (pthread_exit, cancellation): then
             * the next caller runs it, as POSIX wants */
            pthread_cleanup_push(once_abandoned, word);
            init();
            pthread_cleanup_pop(0);
            once_publish(word, ONCE_DONE);
            return 0;
        }
        fz_park_addr(word, ~0u, once_running, word, 0, false);
    }
}

FZ_EXPORT void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}

/* ---- C11 threads (glibc's call pthread internals directly) ----------- */

static int thrd_result(int err)
{
    if (!err)
        return thrd_success;
    return err == ENOMEM ? thrd_nomem : err == ETIMEDOUT ? thrd_timedout : thrd_error;
}

FZ_EXPORT int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    fz_fork_resume();
    if (!fz_hook_active(FZ_HOOK_THREAD))
        return fz_real.thrd_create(thr, func, arg);
    return thrd_result(
        pthread_create((pthread_t *)thr, NULL, (void *(*)(void *))(void *)func, arg));
}

FZ_EXPORT int thrd_join(thrd_t thr, int *res)
{
    if (!fiber_of(thr))
        return fz_real.thrd_join(thr, res);
    void *value;
    int err = pthread_join(thr, &value);
    if (!err && res)
        *res = (int)(intptr_t)value;
    return thrd_result(err);
}

FZ_EXPORT int thrd_detach(thrd_t thr)
{
    if (!fiber_of(thr))
        return fz_real.thrd_detach(thr);
    return thrd_result(pthread_detach(thr));
}

FZ_EXPORT void thrd_exit(int res)
{
    pthread_exit((void *)(intptr_t)res);
}
