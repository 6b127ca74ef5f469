/* The real libc functions behind every interposer, resolved once in the
 * library constructor (dlsym allocates: resolving lazily inside a hook has
 * deadlocked others).  Read-only after start-up. */
#ifndef FZ_REAL_H
#define FZ_REAL_H

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <threads.h>
#include <time.h>

#define FZ_EXPORT __attribute__((visibility("default")))

#define FZ_REAL_SYMBOLS(X)                                                                         \
    X(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))      \
    X(int, pthread_join, (pthread_t, void **))                                                     \
    X(int, pthread_tryjoin_np, (pthread_t, void **))                                               \
    X(int, pthread_timedjoin_np, (pthread_t, void **, const struct timespec *))                    \
    X(int, pthread_clockjoin_np, (pthread_t, void **, clockid_t, const struct timespec *))         \
    X(int, pthread_detach, (pthread_t))                                                            \
    X(void, pthread_exit, (void *))                                                                \
    X(int, pthread_getattr_np, (pthread_t, pthread_attr_t *))                                      \
    X(int, pthread_setname_np, (pthread_t, const char *))                                          \
    X(int, pthread_getname_np, (pthread_t, char *, size_t))                                        \
    X(int, pthread_once, (pthread_once_t *, void (*)(void)))                                       \
    X(int, pthread_kill, (pthread_t, int))                                                         \
    X(void, call_once, (once_flag *, void (*)(void)))                                              \
    X(int, thrd_create, (thrd_t *, thrd_start_t, void *))                                          \
    X(int, thrd_join, (thrd_t, int *))                                                             \
    X(int, thrd_detach, (thrd_t))                                                                  \
    X(void, thrd_exit, (int))                                                                      \
    X(int, thrd_sleep, (const struct timespec *, struct timespec *))                               \
    X(void, thrd_yield, (void))                                                                    \
    X(unsigned, sleep, (unsigned))                                                                 \
    X(int, usleep, (useconds_t))                                                                   \
    X(int, nanosleep, (const struct timespec *, struct timespec *))                                \
    X(int, clock_nanosleep, (clockid_t, int, const struct timespec *, struct timespec *))          \
    X(int, sched_yield, (void))                                                                    \
    X(int, sigaction, (int, const struct sigaction *, struct sigaction *))                         \
    X(sighandler_t, signal, (int, sighandler_t))                                                   \
    X(int, __libc_start_main,                                                                      \
      (int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),              \
       void (*)(void), void *))

struct fz_real {
#define FZ_REAL_FIELD(ret, name, args) ret(*name) args;
    FZ_REAL_SYMBOLS(FZ_REAL_FIELD)
#undef FZ_REAL_FIELD
};

extern struct fz_real fz_real;

/* Resolve every symbol; false (with the missing name) if one is absent. */
int fz_real_resolve(const char **missing);

#endif
