/* Polling what the runtime cannot wait on, in one place.
 *
 * Some objects keep glibc's encoding because the kernel or another process
 * must understand it: process-shared rwlocks, semaphores and barriers, and
 * robust, priority-inherit and priority-protect mutexes.  Their wake-ups
 * are FUTEX_WAKEs the parking lot never sees, so a fiber waiting on one
 * retries the non-blocking form and sleeps on the timer wheel in between,
 * the sleep doubling up to a bound.  A thread waiting natively would be
 * woken at once: the bound is how much later a fiber may notice.
 */
#ifndef FZ_BACKOFF_H
#define FZ_BACKOFF_H

#include <stdint.h>
#include "runtime/park.h"
#include "runtime/sys.h"

/* The most a poller sleeps between two tries, so the most it notices a
 * release later than a native waiter: 1 ms, ~4000 times the cost of one
 * try (a system call), so a long wait costs the carrier almost nothing. */
#define FZ_BACKOFF_MAX_NS 1000000u
/* First sleep for a mutex: critical sections are short, so the holder is
 * likely gone within microseconds and an early retry usually wins. */
#define FZ_BACKOFF_LOCK_FIRST_NS 10000u
/* First sleep for a wait on another party's progress (a semaphore post, a
 * barrier round, a writer's rwlock section), which is rarely that quick:
 * starting higher saves the retries that would almost surely fail. */
#define FZ_BACKOFF_WAIT_FIRST_NS 50000u

/* Returned by fz_backoff_sleep when the deadline had passed: no sleep. */
#define FZ_BACKOFF_EXPIRED (-1)

struct fz_backoff {
    uint64_t delay_ns; /* the next sleep */
};

static inline struct fz_backoff fz_backoff_begin(uint64_t first_ns)
{
    return (struct fz_backoff){first_ns};
}

/* One sleep between two tries: FZ_BACKOFF_EXPIRED if the absolute
 * monotonic deadline (0: none) has passed, else the sleep's wake reason
 * (fz_sleep_until: FZ_WAKE_TIMEOUT, or FZ_WAKE_INTERRUPT when interruptible
 * and a signal handler ran).  The sleep never outlasts the deadline. */
static inline int fz_backoff_sleep(struct fz_backoff *b, uint64_t deadline, int interruptible)
{
    uint64_t now = fz_now_ns();
    if (deadline && now >= deadline)
        return FZ_BACKOFF_EXPIRED;
    uint64_t until = now + b->delay_ns;
    b->delay_ns = b->delay_ns * 2 < FZ_BACKOFF_MAX_NS ? b->delay_ns * 2 : FZ_BACKOFF_MAX_NS;
    return fz_sleep_until(deadline && deadline < until ? deadline : until, interruptible);
}

#endif
