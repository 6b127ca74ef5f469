/* The real libc functions behind every interposer; the table lives here,
 * with the interposers that call through it.  Every slot starts as a
 * stub (syscalls/real.c); the first call through any of them, or the library
 * constructor if it comes first, resolves them all at once -- usually the
 * constructor, but another library's constructor may call an interposed
 * function before ours runs.  Read-only after that.  (dlsym allocates, so
 * resolving one symbol lazily inside each hook would be unsafe: it has
 * deadlocked others.) */
#ifndef FZ_REAL_H
#define FZ_REAL_H

#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sched.h>
#include <stdbool.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <threads.h>
#include <time.h>
#include "syscalls/libc_names.h"

#define FZ_EXPORT __attribute__((visibility("default")))

#define FZ_REAL_SYMBOLS(X)                                                                         \
    X(int, pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))       \
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
    X(int, pthread_sigqueue, (pthread_t, int, const union sigval))                                 \
    X(int, raise, (int))                                                                           \
    X(int, prctl, (int, ...))                                                                      \
    X(int, clock_gettime, (clockid_t, struct timespec *))                                          \
    X(int, gettimeofday, (struct timeval *, void *))                                               \
    X(time_t, time, (time_t *))                                                                    \
    X(int, clock_getres, (clockid_t, struct timespec *))                                           \
    X(int, pthread_getcpuclockid, (pthread_t, clockid_t *))                                        \
    X(int, getrusage, (int, struct rusage *))                                                      \
    X(int, sched_setaffinity, (pid_t, size_t, const cpu_set_t *))                                  \
    X(int, sched_getaffinity, (pid_t, size_t, cpu_set_t *))                                        \
    X(int, pthread_setaffinity_np, (pthread_t, size_t, const cpu_set_t *))                         \
    X(int, pthread_getaffinity_np, (pthread_t, size_t, cpu_set_t *))                               \
    X(int, pthread_getschedparam, (pthread_t, int *, struct sched_param *))                        \
    X(int, pthread_setschedparam, (pthread_t, int, const struct sched_param *))                    \
    X(int, pthread_setschedprio, (pthread_t, int))                                                 \
    X(int, sched_getscheduler, (pid_t))                                                            \
    X(int, sched_getparam, (pid_t, struct sched_param *))                                          \
    X(int, sched_setscheduler, (pid_t, int, const struct sched_param *))                           \
    X(int, sched_setparam, (pid_t, const struct sched_param *))                                    \
    X(int, pthread_cancel, (pthread_t))                                                            \
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
    X(int, pthread_sigmask, (int, const sigset_t *, sigset_t *))                                   \
    X(int, sigprocmask, (int, const sigset_t *, sigset_t *))                                       \
    X(int, sigsuspend, (const sigset_t *))                                                         \
    X(int, sigpending, (sigset_t *))                                                               \
    X(int, sigaltstack, (const stack_t *, stack_t *))                                              \
    X(void, siglongjmp, (struct __jmp_buf_tag *, int))                                             \
    X(void, longjmp, (struct __jmp_buf_tag *, int))                                                \
    X(void, _longjmp, (struct __jmp_buf_tag *, int))                                               \
    X(void, __longjmp_chk, (struct __jmp_buf_tag *, int))                                          \
    X(int, pause, (void))                                                                          \
    X(int, kill, (pid_t, int))                                                                     \
    X(int, sigtimedwait, (const sigset_t *, siginfo_t *, const struct timespec *))                 \
    X(int, sigwait, (const sigset_t *, int *))                                                     \
    X(ssize_t, read, (int, void *, size_t))                                                        \
    X(ssize_t, write, (int, const void *, size_t))                                                 \
    X(ssize_t, readv, (int, const struct iovec *, int))                                            \
    X(ssize_t, writev, (int, const struct iovec *, int))                                           \
    X(ssize_t, recv, (int, void *, size_t, int))                                                   \
    X(ssize_t, recvfrom, (int, void *, size_t, int, struct sockaddr *, socklen_t *))               \
    X(ssize_t, recvmsg, (int, struct msghdr *, int))                                               \
    X(ssize_t, send, (int, const void *, size_t, int))                                             \
    X(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t))       \
    X(ssize_t, sendmsg, (int, const struct msghdr *, int))                                         \
    X(int, recvmmsg, (int, struct mmsghdr *, unsigned, fz_mmsg_flags, struct timespec *))          \
    X(int, sendmmsg, (int, struct mmsghdr *, unsigned, fz_mmsg_flags))                             \
    X(ssize_t, sendfile, (int, int, off_t *, size_t))                                              \
    X(int, shutdown, (int, int))                                                                   \
    X(int, accept, (int, struct sockaddr *, socklen_t *))                                          \
    X(int, accept4, (int, struct sockaddr *, socklen_t *, int))                                    \
    X(int, connect, (int, const struct sockaddr *, socklen_t))                                     \
    X(int, socket, (int, int, int))                                                                \
    X(int, socketpair, (int, int, int, int *))                                                     \
    X(int, pipe, (int *))                                                                          \
    X(int, pipe2, (int *, int))                                                                    \
    X(int, open, (const char *, int, ...))                                                         \
    X(int, openat, (int, const char *, int, ...))                                                  \
    X(int, close, (int))                                                                           \
    X(int, fclose, (FILE *))                                                                       \
    X(FILE *, fopen, (const char *, const char *))                                                 \
    X(FILE *, freopen, (const char *, const char *, FILE *))                                       \
    X(FILE *, popen, (const char *, const char *))                                                 \
    X(int, closedir, (DIR *))                                                                      \
    X(int, eventfd, (unsigned, int))                                                               \
    X(int, timerfd_create, (int, int))                                                             \
    X(int, signalfd, (int, const sigset_t *, int))                                                 \
    X(int, epoll_create, (int))                                                                    \
    X(int, epoll_create1, (int))                                                                   \
    X(int, inotify_init, (void))                                                                   \
    X(int, inotify_init1, (int))                                                                   \
    X(int, memfd_create, (const char *, unsigned))                                                 \
    X(int, creat, (const char *, mode_t))                                                          \
    X(int, close_range, (unsigned, unsigned, int))                                                 \
    X(void, closefrom, (int))                                                                      \
    X(int, dup, (int))                                                                             \
    X(int, dup2, (int, int))                                                                       \
    X(int, dup3, (int, int, int))                                                                  \
    X(int, fcntl, (int, int, ...))                                                                 \
    X(int, ioctl, (int, fz_ioctl_request, ...))                                                    \
    X(int, setsockopt, (int, int, int, const void *, socklen_t))                                   \
    X(int, poll, (struct pollfd *, nfds_t, int))                                                   \
    X(int, ppoll, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *))            \
    X(int, select, (int, fd_set *, fd_set *, fd_set *, struct timeval *))                          \
    X(int, pselect,                                                                                \
      (int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *))              \
    X(int, epoll_wait, (int, struct epoll_event *, int, int))                                      \
    X(int, epoll_pwait, (int, struct epoll_event *, int, int, const sigset_t *))                   \
    X(int, epoll_pwait2,                                                                           \
      (int, struct epoll_event *, int, const struct timespec *, const sigset_t *))                 \
    X(int, __libc_start_main,                                                                      \
      (int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),               \
       void (*)(void), void *))

/* Locks and condition variables (syscalls/mutex.c, cond.c, futex.c). */
#define FZ_REAL_LOCK_SYMBOLS(X)                                                                    \
    X(int, pthread_mutex_lock, (pthread_mutex_t *))                                                \
    X(int, pthread_mutex_trylock, (pthread_mutex_t *))                                             \
    X(int, pthread_mutex_timedlock, (pthread_mutex_t *, const struct timespec *))                  \
    X(int, pthread_mutex_clocklock, (pthread_mutex_t *, clockid_t, const struct timespec *))       \
    X(int, pthread_mutex_unlock, (pthread_mutex_t *))                                              \
    X(int, pthread_cond_wait, (pthread_cond_t *, pthread_mutex_t *))                               \
    X(int, pthread_cond_timedwait, (pthread_cond_t *, pthread_mutex_t *, const struct timespec *)) \
    X(int, pthread_cond_clockwait,                                                                 \
      (pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *))                   \
    X(int, pthread_cond_signal, (pthread_cond_t *))                                                \
    X(int, pthread_cond_broadcast, (pthread_cond_t *))                                             \
    X(int, mtx_lock, (mtx_t *))                                                                    \
    X(int, mtx_trylock, (mtx_t *))                                                                 \
    X(int, mtx_timedlock, (mtx_t *__restrict, const struct timespec *__restrict))                  \
    X(int, mtx_unlock, (mtx_t *))                                                                  \
    X(int, cnd_wait, (cnd_t *, mtx_t *))                                                           \
    X(int, cnd_timedwait,                                                                          \
      (cnd_t *__restrict, mtx_t *__restrict, const struct timespec *__restrict))                   \
    X(long, syscall, (long, ...))

/* Other waits: rwlocks, barriers, spinlocks, semaphores (syscalls/rwlock.c,
 * barrier.c, spin.c, sem.c). */
#define FZ_REAL_WAIT_SYMBOLS(X)                                                                    \
    X(int, pthread_rwlock_rdlock, (pthread_rwlock_t *))                                            \
    X(int, pthread_rwlock_wrlock, (pthread_rwlock_t *))                                            \
    X(int, pthread_rwlock_timedrdlock, (pthread_rwlock_t *, const struct timespec *))              \
    X(int, pthread_rwlock_timedwrlock, (pthread_rwlock_t *, const struct timespec *))              \
    X(int, pthread_rwlock_clockrdlock, (pthread_rwlock_t *, clockid_t, const struct timespec *))   \
    X(int, pthread_rwlock_clockwrlock, (pthread_rwlock_t *, clockid_t, const struct timespec *))   \
    X(int, pthread_rwlock_tryrdlock, (pthread_rwlock_t *))                                         \
    X(int, pthread_rwlock_trywrlock, (pthread_rwlock_t *))                                         \
    X(int, pthread_rwlock_unlock, (pthread_rwlock_t *))                                            \
    X(int, pthread_barrier_wait, (pthread_barrier_t *))                                            \
    X(int, pthread_barrier_destroy, (pthread_barrier_t *))                                         \
    X(int, pthread_spin_lock, (pthread_spinlock_t *))                                              \
    X(int, pthread_spin_trylock, (pthread_spinlock_t *))                                           \
    X(int, sem_wait, (sem_t *))                                                                    \
    X(int, sem_timedwait, (sem_t *, const struct timespec *))                                      \
    X(int, sem_clockwait, (sem_t *, clockid_t, const struct timespec *))                           \
    X(int, sem_trywait, (sem_t *))                                                                 \
    X(int, sem_post, (sem_t *))

/* Calls made in the blocking pool, and process waits (syscalls/dns.c,
 * file.c, process.c). */
#define FZ_REAL_PROCESS_SYMBOLS(X)                                                                 \
    X(int, getaddrinfo, (const char *, const char *, const struct addrinfo *, struct addrinfo **)) \
    X(int, getnameinfo,                                                                            \
      (const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int))             \
    X(struct hostent *, gethostbyname, (const char *))                                             \
    X(struct hostent *, gethostbyname2, (const char *, int))                                       \
    X(struct hostent *, gethostbyaddr, (const void *, socklen_t, int))                             \
    X(int, gethostbyname_r,                                                                        \
      (const char *, struct hostent *, char *, size_t, struct hostent **, int *))                  \
    X(int, gethostbyname2_r,                                                                       \
      (const char *, int, struct hostent *, char *, size_t, struct hostent **, int *))             \
    X(int, gethostbyaddr_r,                                                                        \
      (const void *, socklen_t, int, struct hostent *, char *, size_t, struct hostent **, int *))  \
    X(ssize_t, pread, (int, void *, size_t, off_t))                                                \
    X(ssize_t, pwrite, (int, const void *, size_t, off_t))                                         \
    X(int, fsync, (int))                                                                           \
    X(int, fdatasync, (int))                                                                       \
    X(int, sync_file_range, (int, off64_t, off64_t, unsigned))                                     \
    X(int, flock, (int, int))                                                                      \
    X(int, lockf, (int, int, off_t))                                                               \
    X(int, system, (const char *))                                                                 \
    X(int, posix_spawn,                                                                            \
      (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,       \
       char *const *, char *const *))                                                              \
    X(int, posix_spawnp,                                                                           \
      (pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,       \
       char *const *, char *const *))                                                              \
    X(int, pclose, (FILE *))                                                                       \
    X(pid_t, wait4, (pid_t, int *, int, struct rusage *))                                          \
    X(int, waitid, (idtype_t, id_t, siginfo_t *, int))                                             \
    X(int, clone, (int (*)(void *), void *, int, void *, ...))

/* Directory listings, filtered of the runtime's own fds (syscalls/fd.c). */
#define FZ_REAL_DIR_SYMBOLS(X)                                                                     \
    X(struct dirent *, readdir, (DIR *))                                                           \
    X(struct dirent64 *, readdir64, (DIR *))                                                       \
    X(int, readdir_r, (DIR *, struct dirent *, struct dirent **))                                  \
    X(int, readdir64_r, (DIR *, struct dirent64 *, struct dirent64 **))                            \
    X(ssize_t, getdents64, (int, void *, size_t))                                                  \
    X(int, scandirat,                                                                              \
      (int, const char *, struct dirent ***, int (*)(const struct dirent *),                       \
       int (*)(const struct dirent **, const struct dirent **)))                                   \
    X(int, scandirat64,                                                                            \
      (int, const char *, struct dirent64 ***, int (*)(const struct dirent64 *),                   \
       int (*)(const struct dirent64 **, const struct dirent64 **)))                               \
    X(int, scandir,                                                                                \
      (const char *, struct dirent ***, int (*)(const struct dirent *),                            \
       int (*)(const struct dirent **, const struct dirent **)))                                   \
    X(int, scandir64,                                                                              \
      (const char *, struct dirent64 ***, int (*)(const struct dirent64 *),                        \
       int (*)(const struct dirent64 **, const struct dirent64 **)))

/* Interposed only where a libc binds them internally out of our reach
 * (syscalls/thread_musl.c); resolved on every libc. */
#define FZ_REAL_LIBC_SIDE_SYMBOLS(X)                                                               \
    X(int, pthread_key_create, (pthread_key_t *, void (*)(void *)))                                \
    X(int, pthread_key_delete, (pthread_key_t))                                                    \
    X(int, tss_create, (tss_t *, tss_dtor_t))                                                      \
    X(void, tss_delete, (tss_t))                                                                   \
    X(void, pthread_testcancel, (void))                                                            \
    X(void *, dlopen, (const char *, int))                                                         \
    X(void, abort, (void))

/* stdio on pipes and sockets (syscalls/stdio_glibc.c): the real calls for
 * streams the fiber cannot park on, and glibc's exported refill and flush
 * entry points it builds on.  glibc only: elsewhere stdio is left alone. */
#ifdef __GLIBC__
#define FZ_REAL_STDIO_SYMBOLS(X)                                                                   \
    X(char *, fgets, (char *, int, FILE *))                                                        \
    X(char *, fgets_unlocked, (char *, int, FILE *))                                               \
    X(size_t, fread, (void *, size_t, size_t, FILE *))                                             \
    X(size_t, fread_unlocked, (void *, size_t, size_t, FILE *))                                    \
    X(ssize_t, getdelim, (char **, size_t *, int, FILE *))                                         \
    X(int, fgetc, (FILE *))                                                                        \
    X(int, fgetc_unlocked, (FILE *))                                                               \
    X(int, __uflow, (FILE *))                                                                      \
    X(int, __underflow, (FILE *))                                                                  \
    X(int, __overflow, (FILE *, int))                                                              \
    X(int, _IO_doallocbuf, (FILE *))                                                               \
    X(size_t, fwrite, (const void *, size_t, size_t, FILE *))                                      \
    X(size_t, fwrite_unlocked, (const void *, size_t, size_t, FILE *))                             \
    X(int, fputs, (const char *, FILE *))                                                          \
    X(int, fputs_unlocked, (const char *, FILE *))                                                 \
    X(int, fputc, (int, FILE *))                                                                   \
    X(int, fputc_unlocked, (int, FILE *))                                                          \
    X(int, puts, (const char *))                                                                   \
    X(int, fflush, (FILE *))                                                                       \
    X(int, fflush_unlocked, (FILE *))                                                              \
    X(int, vfprintf, (FILE *, const char *, va_list))                                              \
    X(int, __vfprintf_chk, (FILE *, int, const char *, va_list))                                   \
    X(int, vfscanf, (FILE *, const char *, va_list))                                               \
    X(int, __isoc99_vfscanf, (FILE *, const char *, va_list))
#else
#define FZ_REAL_STDIO_SYMBOLS(X)
#endif

/* clang-format does not settle on one layout for this list: kept by hand */
// clang-format off
#define FZ_REAL_ALL_SYMBOLS(X)                                                                     \
    FZ_REAL_SYMBOLS(X)                                                                             \
    FZ_REAL_LOCK_SYMBOLS(X)                                                                        \
    FZ_REAL_WAIT_SYMBOLS(X)                                                                        \
    FZ_REAL_PROCESS_SYMBOLS(X)                                                                     \
    FZ_REAL_DIR_SYMBOLS(X)                                                                         \
    FZ_REAL_LIBC_SIDE_SYMBOLS(X)                                                                   \
    FZ_REAL_STDIO_SYMBOLS(X)
// clang-format on

struct fz_real {
#define FZ_REAL_FIELD(ret, name, args) ret(*name) args;
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_FIELD)
#undef FZ_REAL_FIELD
};

extern struct fz_real fz_real;

/* Resolve every symbol; false (with the missing name) if one is absent
 * that this libc must have. */
int fz_real_resolve(const char **missing);

/* The per-libc side of resolution (real_glibc.c, real_musl.c). */
/* The definition of name the program would bind to, in the objects after
 * ours; NULL if there is none. */
void *fz_real_lookup(const char *name);
/* Whether this libc may lack name (an interposer of a call only the other
 * libc, or a newer version, has): its slot then stops the process with a
 * message if it is ever called, and start-up goes on. */
bool fz_real_may_lack(const char *name);

#endif
