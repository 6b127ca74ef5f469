/* Semaphores: sem_wait & co park the fiber, never the carrier.
 *
 * We keep glibc's x86_64 encoding of sem_t (the same from 2.34 to 2.42)
 * for every semaphore: a 64-bit `data` word with the value in the low 32
 * bits and the number of waiters in the high 32, then `private`, which is
 * 0 for process-private semaphores and FUTEX_SHARED (128) for pshared ones
 * (sem_init pshared != 0 and every sem_open'ed one).  So sem_init,
 * sem_destroy, sem_getvalue and sem_trywait (one CAS on the value) stay
 * glibc's own, not interposed.
 *
 * Private semaphores: waiters count themselves in the high half, then park
 * on the address of `data` while the value is 0 (re-checked under the
 * parking lot's bucket lock); sem_post increments the value and unparks one
 * waiter if the same atomic word said there were any.  Both sides touch
 * one word, so there is no lost wake-up; a woken waiter that loses the
 * value to a barging sem_wait parks again.  sem_wait ends with EINTR when a
 * handler without SA_RESTART ran (the kernel restarts futex waits for
 * SA_RESTART handlers, so glibc's sem_wait does too).
 *
 * Shared semaphores are also driven by glibc in other processes, whose
 * waiters sleep in the kernel: sem_post stays the real one (it wakes them),
 * and our wait is the real sem_trywait plus a timed sleep of the fiber,
 * backoff 50 µs to 1 ms, until it succeeds or the deadline passes.
 * Non-fiber callers of shared semaphores use the real functions.
 *
 * Timed waits check the timespec (and clock) first, before trying, as
 * glibc does: EINVAL even when the value is positive.
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

struct sem {
    _Atomic uint64_t data;
    int private_flag; /* glibc's `private`: nonzero = process-shared */
    int pad;
};
_Static_assert(sizeof(struct sem) <= sizeof(sem_t), "sem_t layout");

#define VALUE_MASK 0xffffffffull
#define ONE_WAITER (1ull << 32)

static struct sem *as_sem(sem_t *s)
{
    return (struct sem *)s;
}

static bool is_shared(sem_t *s)
{
    return as_sem(s)->private_flag != 0;
}

static bool pass_through(sem_t *s)
{
    return !fz_hook_active(FZ_HOOK_SYNC) || (is_shared(s) && !fz_self());
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/* ---- private semaphores ---------------------------------------------- */

static bool try_take(struct sem *s)
{
    uint64_t d = atomic_load(&s->data);
    while (d & VALUE_MASK)
        if (atomic_compare_exchange_weak(&s->data, &d, d - 1))
            return true;
    return false;
}

static bool value_is_zero(void *ctx)
{
    struct sem *s = ctx;
    return (atomic_load(&s->data) & VALUE_MASK) == 0;
}

/* 0, ETIMEDOUT or EINTR. */
static int wait_private(struct sem *s, uint64_t deadline)
{
    if (try_take(s))
        return 0;
    atomic_fetch_add(&s->data, ONE_WAITER);
    int err = 0;
    while (!try_take(s)) {
        err = fz_park_addr(&s->data, ~0u, value_is_zero, s, deadline, FZ_INTR_NORESTART);
        if (err == ETIMEDOUT || err == EINTR)
            break;
        err = 0;
    }
    atomic_fetch_sub(&s->data, ONE_WAITER);
    if (err == EINTR)
        fz_cancel_point(); /* after the waiter count is right again */
    return err;
}

static int post_private(struct sem *s)
{
    uint64_t d = atomic_load(&s->data);
    do {
        if ((d & VALUE_MASK) == SEM_VALUE_MAX)
            return EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&s->data, &d, d + 1));
    /* sem_post is async-signal-safe: from a handler, wake later */
    if (d >= ONE_WAITER && !(fz_in_signal_handler() && fz_unpark_addr_deferred(&s->data)))
        fz_unpark_addr(&s->data, ~0u, 1);
    return 0;
}

/* ---- shared semaphores: glibc's, polled ------------------------------ */

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

/* sem_wait & co are cancellation points: a pending cancellation is acted
 * on at entry, and pthread_cancel ends a parked wait (fz_cancel_point). */
static int wait_until(sem_t *s, uint64_t deadline)
{
    fz_testcancel();
    int err = is_shared(s) ? wait_shared(s, deadline) : wait_private(as_sem(s), deadline);
    return err ? fail(err) : 0;
}

static int timed_wait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return fail(EINVAL);
    if (!fz_timespec_valid(abs))
        return fail(EINVAL);
    return wait_until(s, fz_abs_to_deadline(clock, abs));
}

FZ_EXPORT int sem_wait(sem_t *s)
{
    if (pass_through(s))
        return fz_real.sem_wait(s);
    fz_schedule_point();
    return wait_until(s, 0);
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
        return fz_real.sem_clockwait(s, clock, abs);
    return timed_wait(s, clock, abs);
}

FZ_EXPORT int sem_post(sem_t *s)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || is_shared(s))
        return fz_real.sem_post(s);
    int err = post_private(as_sem(s));
    return fz_schedule_point_after(err ? fail(err) : 0);
}
