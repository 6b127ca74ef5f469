/* Sleeping and yielding: a sleeping fiber parks on a deadline in the timer
 * wheel; its carrier runs other fibers meanwhile.
 *
 * The contract is the real call's: never early (the wheel fires only at or
 * after the deadline), EINVAL for a bad tv_nsec or negative tv_sec, EINTR
 * with the remaining time when a signal handler runs, whether or not it
 * has SA_RESTART (sleeps are never restarted; syscalls/signal.c), clock_nanosleep returning the
 * error number instead of setting errno.  CLOCK_REALTIME absolute sleeps are mapped to a monotonic
 * deadline and re-checked on wake-up, so a clock set backwards makes them sleep on.  The process
 * CPU clock is slept on in real-time naps until it has advanced enough.  Other clocks (another
 * process's CPU clock) go to the real call, which blocks the carrier.
 */
#include <errno.h>
#include <unistd.h>
#include "runtime/park.h"
#include "syscalls/hook.h"

static void remaining(uint64_t deadline, struct timespec *rem)
{
    uint64_t now = fz_now_ns();
    *rem = fz_ns_to_ts(deadline > now ? deadline - now : 0);
}

/* Sleep until deadline on clock's terms; 0 or EINTR. */
static int sleep_until(clockid_t clock, uint64_t deadline, const struct timespec *abs_realtime,
                       struct timespec *rem)
{
    for (;;) {
        if (fz_sleep_until(deadline, FZ_INTR_ALWAYS) == FZ_WAKE_INTERRUPT) {
            fz_cancel_point();
            if (rem)
                remaining(deadline, rem);
            return EINTR;
        }
        if (clock != CLOCK_REALTIME || !abs_realtime)
            return 0;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (fz_timespec_ns(&now) >= fz_timespec_ns(abs_realtime))
            return 0;
        deadline = fz_abs_to_deadline(CLOCK_REALTIME, abs_realtime);
    }
}

/* The process CPU clock advances only while some thread computes, so the
 * sleep is a series of real-time naps, each as long as the CPU time still
 * missing (never less: the clock cannot run faster than the wall clock
 * times the carriers, and a nap too short just loops). */
static int sleep_on_cpu_clock(clockid_t clock, int flags, const struct timespec *req,
                              struct timespec *rem)
{
    struct timespec now;
    if (clock_gettime(clock, &now) != 0)
        return EINVAL;
    uint64_t target = fz_timespec_ns(req);
    if (!(flags & TIMER_ABSTIME))
        target += fz_timespec_ns(&now);
    for (;;) {
        uint64_t cpu = fz_timespec_ns(&now);
        if (cpu >= target)
            return 0;
        uint64_t nap = target - cpu;
        if (nap < 1000000)
            nap = 1000000;
        if (fz_sleep_until(fz_now_ns() + nap, FZ_INTR_ALWAYS) == FZ_WAKE_INTERRUPT) {
            fz_cancel_point();
            clock_gettime(clock, &now);
            if (rem && !(flags & TIMER_ABSTIME)) {
                cpu = fz_timespec_ns(&now);
                *rem = fz_ns_to_ts(target > cpu ? target - cpu : 0);
            }
            return EINTR;
        }
        clock_gettime(clock, &now);
    }
}

static bool clock_is_ours(clockid_t clock)
{
    return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME;
}

FZ_EXPORT int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                              struct timespec *rem)
{
    bool cpu_clock = clock == CLOCK_PROCESS_CPUTIME_ID;
    if ((!clock_is_ours(clock) && !cpu_clock) || !req || !fz_hook_self(FZ_HOOK_TIME))
        return fz_real.clock_nanosleep(clock, flags, req, rem);
    if (!fz_timespec_valid(req) || (req->tv_sec < 0 && !(flags & TIMER_ABSTIME)))
        return EINVAL;
    if (cpu_clock)
        return sleep_on_cpu_clock(clock, flags, req, rem);
    if (flags & TIMER_ABSTIME)
        return sleep_until(clock, fz_abs_to_deadline(clock, req), req, NULL);
    return sleep_until(clock, fz_rel_to_deadline(req), NULL, rem);
}

FZ_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!req || !fz_hook_self(FZ_HOOK_TIME))
        return fz_real.nanosleep(req, rem);
    int err = clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

FZ_EXPORT int usleep(useconds_t usec)
{
    if (!fz_hook_self(FZ_HOOK_TIME))
        return fz_real.usleep(usec);
    struct timespec ts = {usec / 1000000, (long)(usec % 1000000) * 1000};
    return nanosleep(&ts, NULL);
}

FZ_EXPORT unsigned sleep(unsigned seconds)
{
    if (!fz_hook_self(FZ_HOOK_TIME))
        return fz_real.sleep(seconds);
    int saved = errno;
    struct timespec ts = {seconds, 0}, rem;
    if (nanosleep(&ts, &rem) < 0)
        return (unsigned)rem.tv_sec;
    errno = saved;
    return 0;
}

/* Under fiberize --seed the program's wall clock is the schedule's
 * (runtime/det.c); otherwise these are libc's. */
FZ_EXPORT int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    uint64_t ns;
    if (__builtin_expect(!fz_det_on, 1) || !fz_det_program_clock(CLOCK_REALTIME, &ns))
        return fz_real.gettimeofday(tv, tz);
    if (tz) /* obsolete, but filled as libc does */
        fz_real.gettimeofday(NULL, tz);
    if (tv)
        *tv = (struct timeval){(time_t)(ns / 1000000000u), (suseconds_t)(ns % 1000000000u / 1000u)};
    return 0;
}

FZ_EXPORT time_t time(time_t *out)
{
    uint64_t ns;
    if (__builtin_expect(!fz_det_on, 1) || !fz_det_program_clock(CLOCK_REALTIME, &ns))
        return fz_real.time(out);
    time_t t = (time_t)(ns / 1000000000u);
    if (out)
        *out = t;
    return t;
}

FZ_EXPORT int thrd_sleep(const struct timespec *req, struct timespec *rem)
{
    if (!fz_hook_self(FZ_HOOK_TIME))
        return fz_real.thrd_sleep(req, rem);
    int err = clock_nanosleep(CLOCK_REALTIME, 0, req, rem);
    return err == 0 ? 0 : err == EINTR ? -1 : -2;
}

FZ_EXPORT int sched_yield(void)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_TIME);
    if (!self)
        return fz_real.sched_yield();
    fz_yield(self);
    return 0;
}

/* <pthread.h> redirects pthread_yield to sched_yield; old binaries still
 * call the symbol itself. */
FZ_EXPORT int fz_pthread_yield(void) __asm__("pthread_yield");
int fz_pthread_yield(void)
{
    return sched_yield();
}

FZ_EXPORT void thrd_yield(void)
{
    sched_yield();
}
