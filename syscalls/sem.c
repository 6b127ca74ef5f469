/* Semaphores: sem_wait & co park the fiber, never the carrier.
 *
 * We keep the libc's encoding of sem_t for every semaphore
 * (syscalls/sync_layout.h: glibc's 64-bit value-and-waiters word, musl's
 * value and waiters ints), so sem_init, sem_destroy, sem_getvalue and
 * sem_trywait stay the libc's own, not interposed.
 *
 * Private semaphores: waiters count themselves in (fz_sem_wait_begin),
 * then park on the value's address while it is 0 (re-checked under the
 * parking lot's bucket lock); sem_post adds one to the value and unparks
 * one waiter if, after that, the count said there were any.  So there is
 * no lost wake-up; a woken waiter that loses the value to a barging
 * sem_wait parks again.  sem_wait ends with EINTR when a handler without
 * SA_RESTART ran (the kernel restarts futex waits for SA_RESTART
 * handlers, so the libc's sem_wait does too).
 *
 * Shared semaphores are also driven by the libc in other processes, whose
 * waiters sleep in the kernel: sem_post stays the real one (it wakes them),
 * and our wait is the real sem_trywait plus a timed sleep of the fiber,
 * backoff 50 µs to 1 ms, until it succeeds or the deadline passes.
 * Non-fiber callers of shared semaphores use the real functions.
 *
 * Timed waits check the clock first, and the timespec when the libc does:
 * glibc before trying (EINVAL even when the value is positive), musl only
 * once the call would wait (FZ_SYNC_TIME_CHECKED_FIRST).
 *
 * sem_post is async-signal-safe, but a wake-up takes runtime spinlocks
 * (bucket, idle list) that the code a handler interrupted may hold; while
 * any program handler runs, post defers its wake to the scheduler
 * (park.h's fz_unpark_addr_deferred).
 */
#include <errno.h>
#include <limits.h>
#include <semaphore.h>
#include <stddef.h>
#include "runtime/park.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync_layout.h"

static bool pass_through(sem_t *s)
{
    return !fz_hook_active(FZ_HOOK_SYNC) || (fz_sem_shared(s) && !fz_self());
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* ---- private semaphores ---------------------------------------------- */

/* 0, ETIMEDOUT or EINTR. */
static int wait_private(sem_t *s, uint64_t deadline)
{
    if (fz_sem_try_take(s))
        return 0;
    fz_sem_wait_begin(s);
    int err = 0;
    while (!fz_sem_try_take(s)) {
        err = fz_park_addr(fz_sem_word(s), ~0u, fz_sem_may_park, s, deadline, FZ_INTR_NORESTART);
        if (err == ETIMEDOUT || err == EINTR)
            break;
        err = 0;
    }
    fz_sem_wait_end(s);
    if (err == EINTR)
        fz_cancel_point(); /* after the waiter count is right again */
    return err;
}

static int post_private(sem_t *s)
{
    bool wake;
    int err = fz_sem_add_one(s, &wake);
    /* sem_post is async-signal-safe: from a handler, wake later */
    if (!err && wake && !(fz_in_signal_handler() && fz_unpark_addr_deferred(fz_sem_word(s))))
        fz_unpark_addr(fz_sem_word(s), ~0u, 1);
    return err;
}

/* ---- shared semaphores: the libc's, polled ------------------------- */

static int wait_shared(sem_t *s, uint64_t deadline)
{
    struct fz_backoff backoff = fz_backoff_begin(FZ_BACKOFF_WAIT_FIRST_NS);
    for (;;) {
        int saved = errno;
        if (fz_real.sem_trywait(s) == 0)
            return 0;
        errno = saved;
        int woke = fz_backoff_sleep(&backoff, deadline, FZ_INTR_NORESTART);
        if (woke == FZ_BACKOFF_EXPIRED)
            return ETIMEDOUT;
        if (woke == FZ_WAKE_INTERRUPT)
            return EINTR;
    }
}

/* ---- entry points ---------------------------------------------------- */

/* Once the entry's cancellation check is done.  Not inlined: its loops'
 * frame would be paid by sem_wait's uncontended take too. */
static __attribute__((noinline)) int wait_checked(sem_t *s, uint64_t deadline)
{
    int err = fz_sem_shared(s) ? wait_shared(s, deadline) : wait_private(s, deadline);
    return err ? fail(err) : 0;
}

/* sem_wait & co are cancellation points: a pending cancellation is acted
 * on at entry, and pthread_cancel ends a parked wait (fz_cancel_point). */
static int wait_until(sem_t *s, uint64_t deadline)
{
    fz_testcancel();
    return wait_checked(s, deadline);
}

/* One attempt without waiting: did it take a unit?  errno unchanged. */
static bool take_now(sem_t *s)
{
    if (!fz_sem_shared(s))
        return fz_sem_try_take(s);
    int saved = errno;
    bool took = fz_real.sem_trywait(s) == 0;
    errno = saved;
    return took;
}

static int timed_wait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return fail(EINVAL);
    if (!fz_timespec_valid(abs)) {
        /* musl takes a unit if there is one before it reads the time */
        if (!FZ_SYNC_TIME_CHECKED_FIRST) {
            fz_testcancel();
            if (take_now(s))
                return 0;
        }
        return fail(EINVAL);
    }
    return wait_until(s, fz_abs_to_deadline(clock, abs));
}

FZ_EXPORT int sem_wait(sem_t *s)
{
    if (pass_through(s))
        return fz_real.sem_wait(s);
    fz_schedule_point();
    fz_testcancel();
    /* The uncontended take, before wait_checked's frame (five saved
     * registers), which was a tenth of an uncontended post+wait. */
    if (!fz_sem_shared(s) && fz_sem_try_take(s))
        return 0;
    return wait_checked(s, 0);
}

FZ_EXPORT int sem_timedwait(sem_t *s, const struct timespec *abs)
{
    if (pass_through(s))
        return fz_real.sem_timedwait(s, abs);
    return timed_wait(s, CLOCK_REALTIME, abs);
}

FZ_EXPORT int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    if (pass_through(s))
        return fz_sem_real_clockwait(s, clock, abs);
    return timed_wait(s, clock, abs);
}

FZ_EXPORT int sem_post(sem_t *s)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || fz_sem_shared(s))
        return fz_real.sem_post(s);
    int err = post_private(s);
    return fz_schedule_point_after(err ? fail(err) : 0);
}
