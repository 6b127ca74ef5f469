/* File synchronisation and file locks: calls that wait on the disk or on
 * another process's lock, made in the blocking pool.
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
#include "syscalls/file.h"

FZ_OFFLOADED(int, fsync, FZ_OFFLOAD_CANCEL, (int, fd))

FZ_OFFLOADED(int, fdatasync, FZ_OFFLOAD_CANCEL, (int, fd))

FZ_OFFLOADED(int, sync_file_range, FZ_OFFLOAD_PLAIN, (int, fd), (off64_t, offset),
             (off64_t, nbytes), (unsigned, flags))

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
