/* Regular files, file synchronisation and file locks: calls that wait on
 * the disk or on another process's lock.  Syncs are made in place (a
 * long one is handed off by the monitor), lock waits in the blocking pool.
 *
 * Reads and writes of regular files (epoll cannot wait on them) are made in
 * place by default: a page-cache hit costs a few hundred nanoseconds, a
 * pool round trip several microseconds (make bench: file_read_*), and a
 * carrier that does block on the disk for long is handed off by the
 * monitor.  FIBERIZE_FILE_IO=pool moves them to the pool, for programs
 * whose files are mostly not cached.
 *
 * Lock requests first try the non-blocking form in place (an uncontended
 * lock costs what it costs natively); only one that would wait goes to the
 * pool.  flock and record locks belong to the process or the open file,
 * never to the thread, so a pool thread may take them for the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include "syscalls/offload.h"
#include "runtime/reactor.h"
#include "syscalls/file.h"

FZ_OFFLOAD(static, ssize_t, pool_read, fz_real.read, FZ_OFFLOAD_PLAIN, (int, fd), (void *, buf),
           (size_t, len))
FZ_OFFLOAD(static, ssize_t, pool_write, fz_real.write, FZ_OFFLOAD_PLAIN, (int, fd),
           (const void *, buf), (size_t, len))
FZ_OFFLOAD(static, ssize_t, pool_pread, fz_real.pread, FZ_OFFLOAD_PLAIN, (int, fd), (void *, buf),
           (size_t, len), (off_t, offset))
FZ_OFFLOAD(static, ssize_t, pool_pwrite, fz_real.pwrite, FZ_OFFLOAD_PLAIN, (int, fd),
           (const void *, buf), (size_t, len), (off_t, offset))

bool fz_file_io_in_pool(int fd)
{
    if (!fz_hook_settings.file_io_pool || !fz_hook_active(FZ_HOOK_POOL) || !fz_self())
        return false;
    struct fz_fd *s = fz_fd_get(fd);
    return s && fz_fd_kind(s) == FZ_FD_UNPOLLABLE;
}

ssize_t fz_file_read(int fd, void *buf, size_t len)
{
    return pool_read(fd, buf, len);
}

ssize_t fz_file_write(int fd, const void *buf, size_t len)
{
    return pool_write(fd, buf, len);
}

FZ_EXPORT ssize_t pread(int fd, void *buf, size_t len, off_t offset)
{
    if (fz_file_io_in_pool(fd))
        return pool_pread(fd, buf, len, offset);
    return fz_real.pread(fd, buf, len, offset);
}

FZ_EXPORT ssize_t pread64(int fd, void *buf, size_t len, off_t offset)
    __attribute__((alias("pread")));

FZ_EXPORT ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset)
{
    if (fz_file_io_in_pool(fd))
        return pool_pwrite(fd, buf, len, offset);
    return fz_real.pwrite(fd, buf, len, offset);
}

FZ_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t len, off_t offset)
    __attribute__((alias("pwrite")));

/* Syncs are made in place: on tmpfs or a file with nothing dirty they
 * return in well under a microsecond, and a pool round trip costs tens
 * (make bench: pool_roundtrip_fdatasync); one that waits on the disk has
 * its carrier handed off by the monitor within FZ_BLOCKING_HANDOFF_NS. */
FZ_OFFLOADED(int, fsync, FZ_OFFLOAD_CANCEL | FZ_OFFLOAD_INLINE, (int, fd))

FZ_OFFLOADED(int, fdatasync, FZ_OFFLOAD_CANCEL | FZ_OFFLOAD_INLINE, (int, fd))

FZ_OFFLOADED(int, sync_file_range, FZ_OFFLOAD_PLAIN | FZ_OFFLOAD_INLINE, (int, fd),
             (off64_t, offset), (off64_t, nbytes), (unsigned, flags))

static bool lock_busy(int r)
{
    return r < 0 && (errno == EWOULDBLOCK || errno == EACCES);
}

FZ_OFFLOAD(static, int, pool_flock, fz_real.flock, FZ_OFFLOAD_INTR, (int, fd), (int, op))

FZ_EXPORT int flock(int fd, int op)
{
    if ((op & LOCK_NB) || (op & LOCK_UN) || !fz_hook_active(FZ_HOOK_POOL))
        return fz_real.flock(fd, op);
    int saved = errno;
    int r = fz_real.flock(fd, op | LOCK_NB);
    if (!lock_busy(r))
        return r; /* taken, or an error the blocking call gives as well */
    errno = saved;
    return pool_flock(fd, op);
}

FZ_OFFLOAD(static, int, pool_lockf, fz_real.lockf, FZ_OFFLOAD_WAIT, (int, fd), (int, cmd),
           (off_t, len))

FZ_EXPORT int lockf(int fd, int cmd, off_t len)
{
    if (cmd != F_LOCK || !fz_hook_active(FZ_HOOK_POOL))
        return fz_real.lockf(fd, cmd, len);
    int saved = errno;
    int r = fz_real.lockf(fd, F_TLOCK, len);
    if (!lock_busy(r))
        return r;
    errno = saved;
    return pool_lockf(fd, cmd, len);
}

FZ_EXPORT int lockf64(int fd, int cmd, off_t len) __attribute__((alias("lockf")));

/* fcntl is variadic; libffi calls this fixed form. */
static int fcntl_lock(int fd, int cmd, struct flock *lock)
{
    return fz_real.fcntl(fd, cmd, lock);
}

FZ_OFFLOAD(static, int, pool_fcntl_lock, fcntl_lock, FZ_OFFLOAD_WAIT, (int, fd), (int, cmd),
           (struct flock *, lock))

int fz_fcntl_lock_wait(int fd, int cmd, struct flock *lock)
{
    if (!fz_hook_active(FZ_HOOK_POOL))
        return fz_real.fcntl(fd, cmd, lock);
    int saved = errno;
    int r = fz_real.fcntl(fd, cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK, lock);
    if (!lock_busy(r))
        return r;
    errno = saved;
    return pool_fcntl_lock(fd, cmd, lock);
}
