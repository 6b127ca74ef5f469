/* What every interposer starts with: is this call ours to handle? */
#ifndef FZ_HOOK_H
#define FZ_HOOK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include "syscalls/families.h"
#include "syscalls/real.h"
#include "runtime/asan.h"
#include "runtime/sched.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

/* What a helper returns when it cannot handle a call: the interposer then
 * makes the real call, which behaves exactly as without fiberize.  It is
 * never a valid result of the calls it stands in for (they return -1 or
 * >= 0), so it cannot be confused with one. */
#define FZ_FALLBACK (-2)

/* Run by _exit and _Exit before the process ends (preload/ sets it: the
 * control socket's file goes with the process); exit() runs its atexit
 * handlers instead. */
extern void (*fz_exit_hook)(void);

/* Families whose interposers exist to let other fibers run while a call
 * waits.  While the main fiber is alone (the program has created no thread
 * yet, fz_sched_alone) nothing else could run meanwhile, so their calls
 * are the real ones, made in place: exactly native, at native cost (a
 * waitpid through a pidfd and the reactor is ten system calls instead of
 * one).  Not under --seed, whose clock is virtual: a sleep must not take
 * real time there. */
#define FZ_WAIT_FAMILIES (FZ_HOOK_TIME | FZ_HOOK_IO | FZ_HOOK_PROCESS | FZ_HOOK_POOL)

/* A raw system call's result (fz_sys*) as libc's wrapper gives it: -1
 * with errno set for a negative error, else the value. */
static inline long fz_sys_result(long r)
{
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static inline bool fz_hook_family_on(unsigned family)
{
    if (!(fz_hook_settings.families & family))
        return false;
    return !(family & FZ_WAIT_FAMILIES) || !fz_sched_alone() || fz_det_on;
}

/* The calling fiber if the runtime handles this family for it, else NULL:
 * then the interposer must behave exactly as the real call. */
static inline struct fz_fiber *fz_hook_self(unsigned family)
{
    if (!fz_hook_family_on(family))
        return NULL;
    return fz_self();
}

static inline bool fz_hook_active(unsigned family)
{
    return fz_rt.active && fz_hook_family_on(family);
}

/* The fiber a pthread_t names while the thread family is handled, else
 * NULL (a thread that is not a fiber, or the family off): the interposer
 * then makes the real call. */
static inline struct fz_fiber *fz_hook_thread_fiber(pthread_t th)
{
    if (!fz_hook_active(FZ_HOOK_THREAD) || !th)
        return NULL;
    return fz_tcb_fiber((void *)th);
}

/* A wait at a cancellation point ended early (EINTR): if pthread_cancel
 * ended it, act on it now -- glibc's pthread_testcancel unwinds the fiber
 * through its cleanup handlers and never returns. */
static inline void fz_cancel_point_of(struct fz_fiber *self)
{
    if (self && fz_tcb_cancel_pending(self->tcb)) {
        fz_asan_no_return();
        pthread_testcancel();
    }
}

static inline void fz_cancel_point(void)
{
    fz_cancel_point_of(fz_self());
}

/* Set (never cleared) by the first pthread_cancel the program makes
 * (syscalls/thread.c).  Until then no thread can have a cancellation
 * pending, and a cancellation point at entry costs one load: uncontended
 * sem_wait was 2x native with fz_self() and the TCB read on every call.
 * (A cancel made inside libc, not through pthread_cancel, is not seen;
 * libc cancels only its own helper threads, which never call here.) */
extern bool fz_cancel_requested_ever;

/* pthread_testcancel for any caller (fibers through fz_cancel_point). */
static inline void fz_testcancel(void)
{
    if (__builtin_expect(!__atomic_load_n(&fz_cancel_requested_ever, __ATOMIC_RELAXED), 1))
        return;
    struct fz_fiber *self = fz_self();
    if (self)
        fz_cancel_point_of(self);
    else
        pthread_testcancel();
}

/* A point where the program's threads may interleave (a lock, an unlock,
 * a wake-up, an interposed call): under fiberize --seed the schedule may
 * switch to another thread here (runtime/det.c).  Free otherwise. */
static inline void fz_schedule_point(void)
{
    if (__builtin_expect(fz_det_on, 0)) {
        struct fz_fiber *self = fz_self();
        if (self)
            fz_sched_point(self);
    }
}

/* The same after an operation: returns its result. */
static inline int fz_schedule_point_after(int result)
{
    fz_schedule_point();
    return result;
}

static inline bool fz_timespec_valid(const struct timespec *ts)
{
    return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

static inline int64_t fz_timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* Absolute time on CLOCK_REALTIME or CLOCK_MONOTONIC (others: treated as
 * monotonic by the caller's choice) -> monotonic deadline in ns (>= 1). */
static inline uint64_t fz_abs_to_deadline(clockid_t clock, const struct timespec *abs)
{
    uint64_t mono = fz_now_ns();
    int64_t target = fz_timespec_ns(abs);
    if (clock != CLOCK_REALTIME)
        return target > 0 ? (uint64_t)target : 1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t diff = target - fz_timespec_ns(&now);
    return diff > 0 ? mono + (uint64_t)diff : mono;
}

static inline uint64_t fz_rel_to_deadline(const struct timespec *rel)
{
    int64_t ns = fz_timespec_ns(rel);
    return fz_now_ns() + (ns > 0 ? (uint64_t)ns : 0);
}

#endif
