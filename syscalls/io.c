/* read/write family and sendfile, and the I/O loop shared by every fd
 * interposer.
 *
 * An attempt is made non-blocking per call -- preadv2/pwritev2 with
 * RWF_NOWAIT (pipes, sockets, FIFOs support it) or MSG_DONTWAIT -- so the
 * file description's O_NONBLOCK, which may be shared with other processes,
 * is never touched.  If the attempt says EAGAIN and the program did not ask
 * for non-blocking behaviour (O_NONBLOCK set by itself, MSG_DONTWAIT), the
 * fiber parks until the fd is ready, bounded by SO_RCVTIMEO/SO_SNDTIMEO
 * (EAGAIN on expiry, as natively).  Writes to blocking fds move every byte
 * before returning, as the kernel does; a signal or a timeout after some
 * bytes moved returns the partial count.
 *
 * Fds epoll refuses (regular files, block devices) and fds without
 * RWF_NOWAIT support (ttys) are done inline with the real call: page-cache
 * reads cost less than a hand-off to another thread, and a terminal read
 * blocks its carrier (documented).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>
#include "runtime/reactor.h"
#include "syscalls/file.h"
#include "syscalls/hook.h"
#include "syscalls/io.h"

bool fz_io_pollable(int fd)
{
    if (!fz_hook_self(FZ_HOOK_IO))
        return false;
    struct fz_fd *s = fz_fd_get(fd);
    return s && fz_fd_kind(s) == FZ_FD_POLLABLE && !fz_fd_no_nowait(s);
}

static ssize_t attempt(struct fz_io *io)
{
    struct msghdr *m = io->msg;
    if (io->socket_call) {
        int flags = (io->flags & ~MSG_WAITALL) | MSG_DONTWAIT;
        return io->dir == FZ_READ ? fz_real.recvmsg(io->fd, m, flags)
                                  : fz_real.sendmsg(io->fd, m, flags);
    }
    if (io->dir == FZ_READ)
        return preadv2(io->fd, m->msg_iov, (int)m->msg_iovlen, -1, RWF_NOWAIT);
    return pwritev2(io->fd, m->msg_iov, (int)m->msg_iovlen, -1, RWF_NOWAIT);
}

static size_t iov_total(const struct msghdr *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->msg_iovlen; i++)
        n += m->msg_iov[i].iov_len;
    return n;
}

/* Drop the first `done` bytes from the iovecs (they are the caller's copy). */
static void iov_advance(struct msghdr *m, size_t done)
{
    while (m->msg_iovlen && done >= m->msg_iov[0].iov_len) {
        done -= m->msg_iov[0].iov_len;
        m->msg_iov++;
        m->msg_iovlen--;
    }
    if (m->msg_iovlen) {
        m->msg_iov[0].iov_base = (char *)m->msg_iov[0].iov_base + done;
        m->msg_iov[0].iov_len -= done;
    }
}

/* -1/err, or the bytes moved so far if some were. */
static ssize_t fail(ssize_t moved, int err)
{
    if (moved > 0)
        return moved;
    errno = err;
    return -1;
}

ssize_t fz_io_run(struct fz_io *io)
{
    struct fz_fd *s = fz_fd_get(io->fd);
    uint32_t gen = fz_fd_gen(s);
    uint64_t deadline = 0;
    bool deadline_set = false;
    size_t want = io->all ? iov_total(io->msg) : 0;
    ssize_t moved = 0;
    int saved_errno = errno; /* a call that succeeds leaves errno alone */
    bool draining = io->dir == FZ_READ && !(io->flags & MSG_PEEK);
    bool may_park = !io->dontwait && !fz_fd_nonblock(s);
    for (;;) {
        uint32_t seq = fz_fd_seq(s, io->dir);
        ssize_t r;
        if (draining && may_park && fz_fd_known_empty(s, seq)) {
            r = -1; /* EAGAIN for sure: save the system call (reactor.h) */
            errno = EAGAIN;
        } else {
            size_t asked = draining ? iov_total(io->msg) : 0;
            r = attempt(io);
            if (draining && (r < 0 ? errno == EAGAIN : r > 0 && (size_t)r < asked))
                fz_fd_note_empty(s, seq);
        }
        if (r > 0 && io->all && (size_t)(moved + r) < want) {
            moved += r;
            iov_advance(io->msg, (size_t)r);
            continue;
        }
        if (r >= 0) {
            errno = saved_errno;
            return moved + r;
        }
        if (errno != EAGAIN)
            return fail(moved, errno);
        if (!may_park)
            return fail(moved, EAGAIN);
        if (!deadline_set) {
            uint64_t t = fz_fd_timeout(s, io->dir);
            deadline = t ? fz_now_ns() + t : 0;
            deadline_set = true;
        }
        int w = fz_fd_wait(s, io->dir, seq, deadline);
        if (w == ETIMEDOUT)
            return fail(moved, EAGAIN);
        if (w == EINTR) {
            fz_cancel_point();
            return fail(moved, EINTR);
        }
        if (w == EBADF || fz_fd_gen(s) != gen)
            return fail(moved, EBADF);
    }
}

static ssize_t rw(int fd, int dir, const struct iovec *iov, int n)
{
    struct iovec copy[64];
    if (n < 0 || n > 64)
        return -2; /* caller falls back to the real call */
    memcpy(copy, iov, sizeof(struct iovec) * (size_t)n);
    struct msghdr m = {.msg_iov = copy, .msg_iovlen = (size_t)n};
    struct fz_io io = {.fd = fd, .dir = dir, .all = dir == FZ_WRITE, .msg = &m};
    ssize_t r = fz_io_run(&io);
    if (r < 0 && errno == EOPNOTSUPP) { /* no RWF_NOWAIT here: inline from now on */
        fz_fd_set_no_nowait(fz_fd_get(fd));
        return -2;
    }
    return r;
}

FZ_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
    if (fz_io_pollable(fd)) {
        struct iovec v = {buf, len};
        ssize_t r = rw(fd, FZ_READ, &v, 1);
        if (r != -2)
            return r;
    } else if (fz_file_io_in_pool(fd)) {
        return fz_file_read(fd, buf, len);
    }
    return fz_real.read(fd, buf, len);
}

FZ_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
    if (fz_io_pollable(fd)) {
        struct iovec v = {(void *)buf, len};
        ssize_t r = rw(fd, FZ_WRITE, &v, 1);
        if (r != -2)
            return r;
    } else if (fz_file_io_in_pool(fd)) {
        return fz_file_write(fd, buf, len);
    }
    return fz_real.write(fd, buf, len);
}

FZ_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
    if (fz_io_pollable(fd)) {
        ssize_t r = rw(fd, FZ_READ, iov, n);
        if (r != -2)
            return r;
    }
    return fz_real.readv(fd, iov, n);
}

FZ_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
    if (fz_io_pollable(fd)) {
        ssize_t r = rw(fd, FZ_WRITE, iov, n);
        if (r != -2)
            return r;
    }
    return fz_real.writev(fd, iov, n);
}

/* ---- sendfile -------------------------------------------------------- */

/* Bytes out_fd takes now without blocking, conservatively: half the free
 * send buffer of a socket (the kernel counts buffer overhead too), the free
 * part of a pipe.  0 if unknown. */
static size_t room_for(int fd)
{
    int queued = 0, size = 0;
    socklen_t len = sizeof size;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) == 0) {
        if (fz_real.ioctl(fd, SIOCOUTQ, &queued) != 0 || queued >= size)
            return 0;
        return (size_t)(size - queued) / 2;
    }
    size = fz_real.fcntl(fd, F_GETPIPE_SZ);
    if (size <= 0 || fz_real.ioctl(fd, FIONREAD, &queued) != 0 || queued >= size)
        return 0;
    return (size_t)(size - queued);
}

/* sendfile has no per-call non-blocking form, so a blocking out_fd gets
 * pieces no larger than the room it has, parking whenever it has none.
 * Like a blocking write, it returns once every byte moved, at end of
 * input, or with the partial count when an error or signal cuts it short. */
static ssize_t sendfile_parked(struct fz_fd *s, int out, int in, off_t *offset, size_t count)
{
    uint32_t gen = fz_fd_gen(s);
    uint64_t t = fz_fd_timeout(s, FZ_WRITE), deadline = t ? fz_now_ns() + t : 0;
    int saved_errno = errno;
    ssize_t moved = 0;
    while ((size_t)moved < count) {
        uint32_t seq = fz_fd_seq(s, FZ_WRITE);
        size_t room = room_for(out);
        if (room == 0) {
            int w = fz_fd_wait(s, FZ_WRITE, seq, deadline);
            if (!w && fz_fd_gen(s) != gen)
                w = EBADF;
            if (w == EINTR)
                fz_cancel_point();
            if (w)
                return fail(moved, w == ETIMEDOUT ? EAGAIN : w);
            continue;
        }
        size_t piece = count - (size_t)moved < room ? count - (size_t)moved : room;
        ssize_t r = fz_real.sendfile(out, in, offset, piece);
        if (r < 0)
            return fail(moved, errno);
        moved += r;
        if (r == 0 || (size_t)r < piece)
            break; /* end of input (or the socket took less: return as natively) */
    }
    errno = saved_errno;
    return moved;
}

FZ_EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
    if (count == 0 || !fz_io_pollable(out))
        return fz_real.sendfile(out, in, offset, count);
    struct fz_fd *s = fz_fd_get(out);
    if (fz_fd_nonblock(s))
        return fz_real.sendfile(out, in, offset, count);
    return sendfile_parked(s, out, in, offset, count);
}

FZ_EXPORT ssize_t sendfile64(int out, int in, off_t *offset, size_t count)
    __attribute__((alias("sendfile")));
