/* Clocks and deadlines for the sync test programs' timed waits, and the
 * one rule for "did this time-out come early".
 *
 * A wait that timed out is early when less than its timeout went by on
 * CLOCK_MONOTONIC *and* its deadline's own clock has not reached the
 * deadline.  Either test alone misleads when the realtime clock is set
 * during the wait (the development VM's is, while tests run): a step
 * forward ends a native realtime wait early by CLOCK_MONOTONIC, and
 * fiberize, which turns a realtime deadline into a monotonic one when the
 * wait starts, does not follow a step back (README, Known limitations).
 * A shim whose wait returns ETIMEDOUT at once fails both, and is caught.
 */
#ifndef FZ_TEST_TIMED_WAIT_H
#define FZ_TEST_TIMED_WAIT_H

#include <time.h>

static inline long long now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The absolute time ms from now on clock: a timed wait's deadline. */
static inline struct timespec in_ms(clockid_t clock, long ms)
{
    long long t = now_ns(clock) + ms * 1000000LL;
    return (struct timespec){t / 1000000000LL, t % 1000000000LL};
}

/* A wait begun at CLOCK_MONOTONIC `start` (now_ns), for timeout_ms, to
 * `deadline` on `clock`, has just timed out: was that early? */
static inline int timed_out_early(long long start, long timeout_ms, clockid_t clock,
                                  const struct timespec *deadline)
{
    return now_ns(CLOCK_MONOTONIC) - start < timeout_ms * 1000000LL &&
           now_ns(clock) < deadline->tv_sec * 1000000000LL + deadline->tv_nsec;
}

#endif
