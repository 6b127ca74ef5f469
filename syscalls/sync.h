/* Internal interface between the lock interposers (mutex.c, cond.c and
 * the libc sides of syscalls/sync_layout.h): a condition variable waits by
 * unlocking and relocking the program's mutex with the same algorithm the
 * program's own calls use; time limits are turned into the runtime's
 * deadlines the same way everywhere. */
#ifndef FZ_SYNC_H
#define FZ_SYNC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "syscalls/hook.h"

/* pthread_mutex_lock / unlock as the interposers do them (runtime active).
 * Return 0 or the errno the libc would give. */
int fz_mutex_lock(pthread_mutex_t *m);
int fz_mutex_unlock(pthread_mutex_t *m);

/* Does this call take the runtime's path, or the libc's? */
static inline bool fz_sync_hooked(void)
{
    return fz_hook_active(FZ_HOOK_SYNC);
}

/* Before the runtime starts: do the libc's objects look as
 * syscalls/sync_layout.h says (sync_check_glibc.c, sync_check_musl.c)?
 * If not, *why is one line naming the first fact that failed, and the
 * runtime must stay off. */
bool fz_sync_layout_check(const char **why);

/* Has the absolute time abs on clock passed? */
static inline bool fz_sync_deadline_passed(clockid_t clock, const struct timespec *abs)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return fz_timespec_ns(&now) >= fz_timespec_ns(abs);
}

/* abs on clock `from` as the same instant on clock `to`, read now (an
 * invalid abs is returned as it is, for the callee to refuse). */
static inline struct timespec fz_sync_convert_abs(clockid_t from, const struct timespec *abs,
                                                  clockid_t to)
{
    if (from == to || !fz_timespec_valid(abs))
        return *abs;
    struct timespec now_from, now_to;
    clock_gettime(from, &now_from);
    clock_gettime(to, &now_to);
    int64_t ns = fz_timespec_ns(abs) - fz_timespec_ns(&now_from) + fz_timespec_ns(&now_to);
    if (ns < 0)
        ns = 0;
    return (struct timespec){ns / 1000000000, ns % 1000000000};
}

/* The runtime's deadline for abs on any clock a condition variable may
 * use (musl accepts CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW and the coarse
 * clocks too): REALTIME and MONOTONIC directly, the others through
 * MONOTONIC now.  Callers check the real clock before reporting a
 * time-out, so drift between clocks never makes one early. */
static inline uint64_t fz_sync_deadline(clockid_t clock, const struct timespec *abs)
{
    if (clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC)
        return fz_abs_to_deadline(clock, abs);
    struct timespec mono = fz_sync_convert_abs(clock, abs, CLOCK_MONOTONIC);
    return fz_abs_to_deadline(CLOCK_MONOTONIC, &mono);
}

#endif
