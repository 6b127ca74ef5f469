/* Calls the test programs use that glibc has and musl 1.2.3 lacks, so the
 * same programs build with musl-gcc (make's musl round).  On glibc this
 * header adds only the LIBC_REPORTS_* flags.  On musl each call is made of
 * what musl has, as a program ported to it would: the fd and signal calls
 * as their system calls through syscall(2) (which fiberize interposes
 * too), the waits on a chosen clock through the realtime-deadline waits,
 * the static mutex initializers as the objects musl's pthread_mutex_init
 * makes.  A fiberized run is compared with a native run on the same libc,
 * so the stand-ins need to be faithful to what the test asserts, no more.
 */
#ifndef FZ_TEST_LIBC_COMPAT_H
#define FZ_TEST_LIBC_COMPAT_H

/* What POSIX leaves undefined and glibc reports, so programs check it on
 * glibc only: joining a detached thread or oneself (glibc: EINVAL,
 * EDEADLK; musl stops the process with a_crash in pthread_join, or waits
 * forever), destroying a locked mutex (glibc: EBUSY; musl: 0). */
/* An invalid timeout given to a wait that need not wait: glibc checks the
 * time first (EINVAL), musl takes the free semaphore first (0). */
#ifdef __GLIBC__
#define LIBC_REPORTS_JOIN_MISUSE 1
#define LIBC_REPORTS_DESTROY_BUSY 1
#define LIBC_CHECKS_TIME_FIRST 1
#else
#define LIBC_REPORTS_JOIN_MISUSE 0
#define LIBC_REPORTS_DESTROY_BUSY 0
#define LIBC_CHECKS_TIME_FIRST 0
#endif

#ifndef __GLIBC__
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int close_range(unsigned first, unsigned last, int flags)
{
    return (int)syscall(SYS_close_range, first, last, flags);
}

static inline void closefrom(int lowfd)
{
    syscall(SYS_close_range, lowfd, ~0u, 0);
}

static inline int tgkill(pid_t pid, pid_t tid, int sig)
{
    return (int)syscall(SYS_tgkill, pid, tid, sig);
}

static inline int epoll_pwait2(int epfd, struct epoll_event *events, int max,
                               const struct timespec *timeout, const sigset_t *mask)
{
    return (int)syscall(SYS_epoll_pwait2, epfd, events, max, timeout, mask, _NSIG / 8);
}

/* The errno names the programs print; others by number. */
static inline const char *strerrorname_np(int err)
{
    static const struct {
        int err;
        const char *name;
    } names[] = {
        {EAGAIN, "EAGAIN"},
        {EINTR, "EINTR"},
        {EPIPE, "EPIPE"},
        {ECONNRESET, "ECONNRESET"},
        {ECONNREFUSED, "ECONNREFUSED"},
        {EBADF, "EBADF"},
        {EINVAL, "EINVAL"},
        {ENOTCONN, "ENOTCONN"},
        {ETIMEDOUT, "ETIMEDOUT"},
        {EINPROGRESS, "EINPROGRESS"},
        {ECANCELED, "ECANCELED"},
        {ENOENT, "ENOENT"},
    };
    static char other[16];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].err == err)
            return names[i].name;
    snprintf(other, sizeof other, "E%d", err);
    return other;
}

/* A deadline on clock as a CLOCK_REALTIME one; false for a clock the
 * clock-taking waits refuse (EINVAL). */
static inline int compat_realtime_deadline(clockid_t clock, const struct timespec *abs,
                                           struct timespec *out)
{
    if (clock == CLOCK_REALTIME) {
        *out = *abs;
        return 1;
    }
    if (clock != CLOCK_MONOTONIC)
        return 0;
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    long long ns = (abs->tv_sec - mono.tv_sec) * 1000000000LL + (abs->tv_nsec - mono.tv_nsec) +
                   real.tv_sec * 1000000000LL + real.tv_nsec;
    if (ns < 0)
        ns = 0;
    out->tv_sec = ns / 1000000000LL;
    out->tv_nsec = ns % 1000000000LL;
    return 1;
}

static inline int pthread_clockjoin_np(pthread_t t, void **ret, clockid_t clock,
                                       const struct timespec *abs)
{
    struct timespec real;
    if (!abs)
        return pthread_join(t, ret);
    if (abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000L ||
        !compat_realtime_deadline(clock, abs, &real))
        return EINVAL;
    return pthread_timedjoin_np(t, ret, &real);
}

static inline int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    struct timespec real;
    if (abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000L ||
        !compat_realtime_deadline(clock, abs, &real)) {
        errno = EINVAL;
        return -1;
    }
    return sem_timedwait(s, &real);
}

/* The realtime form of a clock-taking lock: NAME(obj, clock, abs) calls
 * TIMED(obj, realtime abs). */
#define COMPAT_CLOCK_LOCK(name, timed, type)                                                       \
    static inline int name(type *obj, clockid_t clock, const struct timespec *abs)                 \
    {                                                                                              \
        struct timespec real;                                                                      \
        if (abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000L ||                                     \
            !compat_realtime_deadline(clock, abs, &real))                                          \
            return EINVAL;                                                                         \
        return timed(obj, &real);                                                                  \
    }
COMPAT_CLOCK_LOCK(pthread_mutex_clocklock, pthread_mutex_timedlock, pthread_mutex_t)
COMPAT_CLOCK_LOCK(pthread_rwlock_clockrdlock, pthread_rwlock_timedrdlock, pthread_rwlock_t)
COMPAT_CLOCK_LOCK(pthread_rwlock_clockwrlock, pthread_rwlock_timedwrlock, pthread_rwlock_t)

/* pthread_cond_timedwait reads its deadline on the condvar's own clock,
 * which musl keeps in the fifth int of pthread_cond_t (_c_clock in musl
 * 1.2.3's src/internal/pthread_impl.h; pthread_cond_init copies the
 * attribute's clock there).  The deadline is moved onto that clock. */
static inline int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                         const struct timespec *abs)
{
    clockid_t own = c->__u.__i[4];
    struct timespec real, mono, on_own;
    if (abs->tv_nsec < 0 || abs->tv_nsec >= 1000000000L ||
        !compat_realtime_deadline(clock, abs, &real))
        return EINVAL;
    if (own != CLOCK_MONOTONIC)
        return pthread_cond_timedwait(c, m, &real);
    struct timespec now_real;
    clock_gettime(CLOCK_REALTIME, &now_real);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    long long ns = (real.tv_sec - now_real.tv_sec) * 1000000000LL +
                   (real.tv_nsec - now_real.tv_nsec) + mono.tv_sec * 1000000000LL + mono.tv_nsec;
    if (ns < 0)
        ns = 0;
    on_own.tv_sec = ns / 1000000000LL;
    on_own.tv_nsec = ns % 1000000000LL;
    return pthread_cond_timedwait(c, m, &on_own);
}

/* musl refuses PTHREAD_PRIO_PROTECT (setprotocol: ENOTSUP) and declares
 * but does not define the ceiling's setter. */
#define pthread_mutexattr_setprioceiling compat_mutexattr_setprioceiling
static inline int compat_mutexattr_setprioceiling(pthread_mutexattr_t *a, int ceiling)
{
    (void)a, (void)ceiling;
    return ENOTSUP;
}

/* musl's pthread_mutex_init stores the attribute's type (PTHREAD_MUTEX_*,
 * in its low bits) in the first int and zeroes the rest; it has no
 * adaptive kind (that is a normal mutex). */
#define PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP PTHREAD_MUTEX_INITIALIZER
#define PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP                                                     \
    {                                                                                              \
        {                                                                                          \
            {                                                                                      \
                PTHREAD_MUTEX_RECURSIVE                                                            \
            }                                                                                      \
        }                                                                                          \
    }
#define PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP                                                    \
    {                                                                                              \
        {                                                                                          \
            {                                                                                      \
                PTHREAD_MUTEX_ERRORCHECK                                                           \
            }                                                                                      \
        }                                                                                          \
    }

/* musl has one rwlock kind (new readers are not held back by a waiting
 * writer): glibc's kinds are that one, as in a port to musl. */
#define PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP PTHREAD_RWLOCK_INITIALIZER
#define PTHREAD_RWLOCK_PREFER_READER_NP 0
#define PTHREAD_RWLOCK_PREFER_WRITER_NP 1
#define PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP 2
static inline int pthread_rwlockattr_setkind_np(pthread_rwlockattr_t *a, int kind)
{
    (void)a;
    return kind >= 0 && kind <= 2 ? 0 : EINVAL;
}
#endif

#endif
