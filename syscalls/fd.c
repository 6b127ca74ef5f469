/* Fd bookkeeping for creators and closers the I/O families do not cover.
 *
 * The reactor keeps state per fd number (registered, the program's
 * O_NONBLOCK, timeouts).  A number closed behind our back -- by fclose,
 * which calls libc's internal close -- and reused by a creator we do not
 * see would inherit that state, and a fiber could park on an epoll
 * registration the kernel dropped with the old file.  So every creator
 * and closer a program can call through the PLT forgets the number's
 * state: the next use registers afresh.  (Range closes and fd listings,
 * which must also step around the runtime's own fds, are in fdhide.c.)
 */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include "runtime/reactor.h"
#include "syscalls/offload.h"

static int forget(int fd)
{
    if (fd >= 0 && fz_rt.active)
        fz_fd_forget(fd);
    return fd;
}

static FILE *forget_stream(FILE *f)
{
    if (f)
        forget(fileno(f));
    return f;
}

/* A stream's fd is about to be closed inside libc: as close() does, calls
 * parked on it keep the file, and once it is closed those that parked
 * meanwhile are woken (reactor.h).  fd -1: nothing to do. */
struct closing {
    int fd;
    unsigned token;
};

static struct closing closing_stream(FILE *f)
{
    int fd = f ? fileno(f) : -1;
    if (fd < 0 || !fz_rt.active)
        return (struct closing){-1, 0};
    return (struct closing){fd, fz_fd_close(fd)};
}

static void closed_stream(struct closing c)
{
    if (c.fd >= 0)
        fz_fd_closed(c.fd, c.token);
}

FZ_EXPORT int fclose(FILE *f)
{
    struct closing c = closing_stream(f);
    int r = fz_real.fclose(f);
    closed_stream(c);
    return r;
}

FZ_EXPORT FILE *fopen(const char *path, const char *mode)
{
    return forget_stream(fz_real.fopen(path, mode));
}

FZ_EXPORT FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

FZ_EXPORT FILE *freopen(const char *path, const char *mode, FILE *f)
{
    struct closing c = closing_stream(f);
    FILE *r = fz_real.freopen(path, mode, f);
    closed_stream(c);
    return forget_stream(r);
}

FZ_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *f)
    __attribute__((alias("freopen")));

/* popen starts its shell with vfork semantics: the caller waits until the
 * child has exec'd, which can take milliseconds -- in the pool, with the
 * caller's signal mask for the child. */
FZ_OFFLOAD(static, FILE *, pool_popen, fz_real.popen, FZ_OFFLOAD_SPAWN, (const char *, cmd),
           (const char *, mode))

FZ_EXPORT FILE *popen(const char *cmd, const char *mode)
{
    if (!fz_hook_active(FZ_HOOK_POOL))
        return forget_stream(fz_real.popen(cmd, mode));
    return forget_stream(pool_popen(cmd, mode));
}

/* pclose waits for the shell (in the pool) and closes the stream's fd
 * inside libc, as fclose does. */
FZ_OFFLOAD(static, int, pool_pclose, fz_real.pclose, FZ_OFFLOAD_PLAIN, (FILE *, stream))

FZ_EXPORT int pclose(FILE *stream)
{
    struct closing c = closing_stream(stream);
    int r = fz_hook_active(FZ_HOOK_PROCESS) ? pool_pclose(stream) : fz_real.pclose(stream);
    closed_stream(c); /* raw calls: errno stays pclose's */
    return r;
}

FZ_EXPORT int closedir(DIR *d)
{
    forget(dirfd(d));
    return fz_real.closedir(d);
}

FZ_EXPORT int eventfd(unsigned value, int flags)
{
    return forget(fz_real.eventfd(value, flags));
}

FZ_EXPORT int timerfd_create(int clock, int flags)
{
    return forget(fz_real.timerfd_create(clock, flags));
}

FZ_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
    return forget(fz_real.signalfd(fd, mask, flags));
}

FZ_EXPORT int epoll_create(int size)
{
    return forget(fz_real.epoll_create(size));
}

FZ_EXPORT int epoll_create1(int flags)
{
    return forget(fz_real.epoll_create1(flags));
}

FZ_EXPORT int inotify_init(void)
{
    return forget(fz_real.inotify_init());
}

FZ_EXPORT int inotify_init1(int flags)
{
    return forget(fz_real.inotify_init1(flags));
}

FZ_EXPORT int memfd_create(const char *name, unsigned flags)
{
    return forget(fz_real.memfd_create(name, flags));
}

FZ_EXPORT int creat(const char *path, mode_t mode)
{
    return forget(fz_real.creat(path, mode));
}

FZ_EXPORT int creat64(const char *path, mode_t mode) __attribute__((alias("creat")));

/* open and openat: the new number's old state is forgotten; the *64
 * names programs built with _FILE_OFFSET_BITS=64 call are the same calls on
 * x86_64.  Opening a FIFO without O_NONBLOCK waits for the other end: a
 * fiber does that in the blocking pool (the price is one fstatat per
 * blocking open a fiber makes). */
static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

static bool may_wait_for_peer(int dirfd, const char *path, int flags)
{
    if ((flags & (O_NONBLOCK | O_PATH)) || (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL) ||
        !fz_hook_active(FZ_HOOK_POOL) || !fz_self())
        return false;
    struct stat st;
    int saved = errno;
    bool fifo = fstatat(dirfd, path, &st, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) == 0 &&
                S_ISFIFO(st.st_mode);
    errno = saved;
    return fifo;
}

/* openat is variadic; libffi calls this fixed form. */
static int openat_fixed(int dirfd, const char *path, int flags, unsigned mode)
{
    return fz_real.openat(dirfd, path, flags, mode);
}

FZ_OFFLOAD(static, int, pool_openat, openat_fixed, FZ_OFFLOAD_WAIT, (int, dirfd),
           (const char *, path), (int, flags), (unsigned, mode))

/* A FIFO: its write end opens at once when a reader has it open, so that
 * is tried in place (O_NONBLOCK fails with ENXIO when there is none; the
 * flag then comes off the new description, which nothing else shares) and
 * only a wait for a reader goes to the pool, whose round trip costs tens
 * of microseconds.  The read end cannot be tried so (O_RDONLY|O_NONBLOCK
 * opens without a writer), and O_RDWR never waits on Linux (fifo(7)). */
static int open_fifo(int dirfd, const char *path, int flags, mode_t mode)
{
    int access = flags & O_ACCMODE;
    if (access == O_RDWR)
        return fz_real.openat(dirfd, path, flags, mode);
    if (access == O_WRONLY) {
        fz_cancel_point(); /* open is one, and this attempt may be all of it */
        int saved = errno;
        int fd = fz_real.openat(dirfd, path, flags | O_NONBLOCK, mode);
        if (fd >= 0) {
            /* The blocking open's status flags, without an F_GETFL (one
             * system call less per open): F_SETFL changes only these and
             * O_NONBLOCK.  O_ASYNC is as open(2) left it (set in the flags,
             * no owner registered): passing it on changes nothing. */
            int status = flags & (O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME);
            if (fz_real.fcntl(fd, F_SETFL, status) < 0) {
                fz_real.close(fd); /* cannot happen on a FIFO we just opened */
                errno = saved;
                return pool_openat(dirfd, path, flags, mode);
            }
            errno = saved;
            return fd;
        }
        if (errno != ENXIO)
            return fd; /* what the blocking open fails with too */
        errno = saved;
    }
    return pool_openat(dirfd, path, flags, mode);
}

static int open_at(int dirfd, const char *path, int flags, mode_t mode)
{
    if (may_wait_for_peer(dirfd, path, flags))
        return forget(open_fifo(dirfd, path, flags, mode));
    return forget(fz_real.openat(dirfd, path, flags, mode));
}

FZ_EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return open_at(AT_FDCWD, path, flags, mode);
}

FZ_EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));

FZ_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return open_at(dirfd, path, flags, mode);
}

FZ_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
    __attribute__((alias("openat")));
