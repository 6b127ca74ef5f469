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
 * Two things a blocking system call does in one step take several here,
 * and nothing may fall between them: a signal handled after the attempt
 * and before the park ends the call (the call's interrupt window, park.h),
 * and an error a hidden retry got after part of the transfer moved is
 * returned as the kernel would -- the count now, and the error kept for
 * the program's next call on the fd if the kernel reports it only once
 * (fz_io_keep_error).  Every variant waits through fz_io_wait, or
 * fz_io_wait_following where the call can go on after the program closes
 * the fd under it, as a blocked system call does (reactor.h).
 *
 * Fds epoll refuses (regular files, block devices) are done inline with
 * the real call: page-cache reads cost less than a hand-off to another
 * thread.  Only pipe(2)'s pipes and sockets take RWF_NOWAIT; a FIFO or a
 * terminal answers EOPNOTSUPP (Linux 6.18 as before), so for those an
 * attempt asks poll(2) first and makes the real call only when it says
 * the call will not wait (attempt_probed).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>
#include "runtime/reactor.h"
#include "runtime/sigthread.h"
#include "runtime/tls.h"
#include "syscalls/file.h"
#include "syscalls/hook.h"
#include "syscalls/io.h"

bool fz_io_pollable(int fd)
{
    if (!fz_hook_self(FZ_HOOK_IO))
        return false;
    struct fz_fd *s = fz_fd_get(fd);
    return s && fz_fd_kind(s) == FZ_FD_POLLABLE;
}

/* Bytes a probed write hands the kernel at once.  poll's POLLOUT on a
 * pipe promises one free 4 KiB slot, so PIPE_BUF always fits; more is
 * sent when the pipe says it has room for it, less two pages for
 * partly filled slots at either end.  A write that still finds the pipe
 * full (another writer got there first) blocks the carrier until the
 * reader drains it, and the monitor hands the carrier's fibers off. */
static size_t probed_write_size(int fd)
{
    int size = fz_real.fcntl(fd, F_GETPIPE_SZ), queued = 0;
    if (size <= 0 || fz_real.ioctl(fd, FIONREAD, &queued) != 0 || size - queued <= 3 * PIPE_BUF)
        return PIPE_BUF;
    return (size_t)(size - queued - 2 * PIPE_BUF);
}

/* An attempt on an fd without RWF_NOWAIT (a FIFO, a terminal): EAGAIN
 * unless poll says the real call will not wait; a write is cut to what
 * the pipe takes now (the loop sends the rest).  A write of at most
 * PIPE_BUF is never cut, so it stays atomic.  A reader that raced us to
 * the data makes the real read wait on the carrier (as above). */
static ssize_t attempt_probed(struct fz_io *io)
{
    struct pollfd p = {.fd = io->fd, .events = io->dir == FZ_READ ? POLLIN : POLLOUT};
    int ready = fz_real.poll(&p, 1, 0);
    if (ready == 0) {
        errno = EAGAIN;
        return -1;
    }
    struct msghdr *m = io->msg;
    if (io->dir == FZ_READ)
        return fz_real.readv(io->fd, m->msg_iov, (int)m->msg_iovlen);
    size_t room = probed_write_size(io->fd), total = 0;
    size_t n = 0;
    struct iovec cut[FZ_IOV_MAX];
    while (n < (size_t)m->msg_iovlen && total < room) {
        cut[n] = m->msg_iov[n];
        if (cut[n].iov_len > room - total)
            cut[n].iov_len = room - total;
        total += cut[n++].iov_len;
    }
    return fz_real.writev(io->fd, cut, (int)n);
}

/* preadv2/pwritev2 at the file position (offset -1) with RWF_NOWAIT, as
 * system calls: musl 1.2.3 has no wrappers for them, and glibc's are the
 * bare call when the kernel has it.  The kernel joins the offset from two
 * halves; on x86-64 the low one is the whole of it. */
static ssize_t nowait_transfer(enum fz_dir dir, int fd, const struct iovec *iov, int n)
{
    return fz_sys_result(
        fz_sys6(dir == FZ_READ ? SYS_preadv2 : SYS_pwritev2, fd, (long)iov, n, -1, 0, RWF_NOWAIT));
}

/* read/write on a SOCK_STREAM socket as the socket calls with
 * MSG_DONTWAIT: the same socket code preadv2/pwritev2 with RWF_NOWAIT
 * reach (recv(2): without flags they are read and write), minus the file
 * layer's iovec import and position lock -- 0.3 us less per read + write
 * pair on loopback TCP, where a request of make bench's HTTP server costs
 * about 8 us of CPU.  -1 without a call for an empty transfer: read(fd,
 * buf, 0) returns 0 at once where recv waits for a byte. */
static ssize_t socket_transfer(enum fz_dir dir, int fd, const struct msghdr *m, bool *made)
{
    long r;
    *made = true;
    if (m->msg_iovlen == 1 && m->msg_iov[0].iov_len > 0) {
        const struct iovec *v = &m->msg_iov[0];
        r = dir == FZ_READ
                ? fz_sys6(SYS_recvfrom, fd, (long)v->iov_base, (long)v->iov_len, MSG_DONTWAIT, 0, 0)
                : fz_sys6(SYS_sendto, fd, (long)v->iov_base, (long)v->iov_len, MSG_DONTWAIT, 0, 0);
    } else if (m->msg_iovlen > 1 && fz_iov_total(m) > 0) {
        struct msghdr only = {.msg_iov = m->msg_iov, .msg_iovlen = m->msg_iovlen};
        r = fz_sys3(dir == FZ_READ ? SYS_recvmsg : SYS_sendmsg, fd, (long)&only, MSG_DONTWAIT);
    } else {
        *made = false;
        return -1;
    }
    return fz_sys_result(r);
}

void fz_io_sigpipe_to_fiber(int flags)
{
    if (errno != EPIPE || (flags & MSG_NOSIGNAL))
        return;
    int err = errno;
    struct fz_fiber *self = fz_self();
    if (self)
        fz_sigthread_adopt_own(self, SIGPIPE);
    errno = err;
}

static ssize_t attempt_once(struct fz_fd *s, struct fz_io *io)
{
    struct msghdr *m = io->msg;
    if (fz_fd_no_nowait(s) && !fz_fd_nonblock(s))
        return attempt_probed(io);
    if (fz_fd_no_nowait(s)) /* O_NONBLOCK, the program's own: the real call never waits */
        return io->dir == FZ_READ ? fz_real.readv(io->fd, m->msg_iov, (int)m->msg_iovlen)
                                  : fz_real.writev(io->fd, m->msg_iov, (int)m->msg_iovlen);
    if (io->socket_call) {
        int flags = (io->flags & ~MSG_WAITALL) | MSG_DONTWAIT;
        return io->dir == FZ_READ ? fz_real.recvmsg(io->fd, m, flags)
                                  : fz_real.sendmsg(io->fd, m, flags);
    }
    if (fz_fd_stream_socket(s)) {
        bool made;
        ssize_t r = socket_transfer(io->dir, io->fd, m, &made);
        if (made)
            return r;
    }
    return nowait_transfer(io->dir, io->fd, m->msg_iov, (int)m->msg_iovlen);
}

static ssize_t attempt(struct fz_fd *s, struct fz_io *io)
{
    ssize_t r = attempt_once(s, io);
    if (r < 0 && io->dir == FZ_WRITE)
        fz_io_sigpipe_to_fiber(io->flags);
    return r;
}

bool fz_iov_copy(struct iovec *dst, const struct iovec *src, size_t n)
{
    if (n > FZ_IOV_MAX)
        return false;
    memcpy(dst, src, sizeof(struct iovec) * n);
    return true;
}

size_t fz_iov_total(const struct msghdr *m)
{
    size_t n = 0;
    for (size_t i = 0; i < (size_t)m->msg_iovlen; i++) /* an int on musl */
        n += m->msg_iov[i].iov_len;
    return n;
}

void fz_iov_advance(struct msghdr *m, size_t done)
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

uint64_t fz_io_deadline(struct fz_fd *s, int dir)
{
    uint64_t t = fz_fd_timeout(s, dir);
    return t ? fz_now_ns() + t : 0;
}

int fz_io_intr(struct fz_fd *s, int dir)
{
    return fz_fd_timeout(s, dir) ? FZ_INTR_ALWAYS : FZ_INTR_NORESTART;
}

int fz_io_wait(struct fz_fd *s, int dir, uint32_t seq, uint32_t gen, uint64_t deadline,
               int timeout_errno)
{
    int w = fz_fd_wait(s, dir, seq, deadline);
    if (w == ETIMEDOUT)
        return timeout_errno;
    if (w == EINTR) {
        fz_cancel_point();
        return EINTR;
    }
    if (w == EBADF || fz_fd_gen(s) != gen)
        return EBADF;
    return 0;
}

int fz_io_wait_following(const struct fz_fd *began, struct fz_fd **s, uint32_t *gen, int dir,
                         uint32_t seq, uint64_t deadline, int timeout_errno)
{
    int w = fz_fd_wait_following(s, gen, dir, seq, deadline);
    if (w == ETIMEDOUT)
        return timeout_errno;
    if (w == EINTR) {
        struct fz_fiber *self = fz_self();
        if (self && fz_tcb_cancel_pending(self->tcb)) {
            /* the unwinding skips the caller's fz_fd_call_over */
            fz_fd_call_over(began, *s);
            *s = NULL;
            fz_cancel_point_of(self);
        }
        return EINTR;
    }
    return w == EBADF ? EBADF : 0;
}

/* The socket errors the kernel hands out once (sock_error() clears
 * sk_err): a retry that took one consumed the program's only report. */
static bool reported_once(int err)
{
    switch (err) {
    case ECONNRESET:
    case ECONNABORTED:
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETUNREACH:
    case ENETDOWN:
    case EPROTO:
        return true;
    default:
        return false;
    }
}

ssize_t fz_io_keep_error(struct fz_fd *s, ssize_t moved, int err)
{
    if (reported_once(err))
        fz_fd_keep_error(s, err);
    return moved;
}

/* -1/err, or the bytes moved so far if some were: then a natively blocking
 * call would have returned the count too and left the error for the next
 * call, so a once-only error is kept for it. */
static ssize_t fail(struct fz_fd *s, ssize_t moved, int err)
{
    if (moved > 0)
        return fz_io_keep_error(s, moved, err);
    errno = err;
    return -1;
}

static ssize_t io_loop(struct fz_fd **sp, struct fz_io *io, bool may_park)
{
    struct fz_fd *s = *sp, *began = s;
    uint32_t gen = fz_fd_gen(s);
    uint64_t deadline = 0;
    bool deadline_set = false;
    size_t want = io->all ? fz_iov_total(io->msg) : 0;
    ssize_t moved = 0;
    int saved_errno = errno; /* a call that succeeds leaves errno alone */
    bool draining = io->dir == FZ_READ && !(io->flags & MSG_PEEK);
    if (io->dir == FZ_WRITE && fz_fd_error_kept(s)) {
        int err = fz_fd_take_error(s); /* a send checks the socket's error first */
        if (err)
            return fail(s, 0, err);
    }
    for (;;) {
        uint32_t seq = fz_fd_seq(s, io->dir);
        size_t asked = io->dir == FZ_READ ? fz_iov_total(io->msg) : 0;
        ssize_t r;
        if (draining && may_park && fz_fd_known_empty(s, seq)) {
            r = -1; /* EAGAIN for sure: save the system call (reactor.h) */
            errno = EAGAIN;
        } else {
            r = attempt(s, io);
            if (draining && (r < 0 ? errno == EAGAIN : r > 0 && (size_t)r < asked))
                fz_fd_note_empty(s, seq);
        }
        /* a receive reports the socket's error once no data is left */
        if (io->dir == FZ_READ && moved == 0 && asked > 0 &&
            (r == 0 || (r < 0 && errno == EAGAIN)) && fz_fd_error_kept(s)) {
            int err = fz_fd_take_error(s);
            if (err)
                return fail(s, 0, err);
        }
        if (r > 0 && io->all && (size_t)(moved + r) < want) {
            moved += r;
            fz_iov_advance(io->msg, (size_t)r);
            continue;
        }
        if (r >= 0) {
            errno = saved_errno;
            return moved + r;
        }
        if (errno != EAGAIN)
            return fail(s, moved, errno);
        if (!may_park)
            return fail(s, moved, EAGAIN);
        if (!deadline_set) {
            deadline = fz_io_deadline(s, io->dir);
            deadline_set = true;
        }
        int err = fz_io_wait_following(began, sp, &gen, io->dir, seq, deadline, EAGAIN);
        s = *sp;
        if (err)
            return fail(s, moved, err);
        io->fd = fz_fd_number(s); /* a close moved the file (reactor.h) */
    }
}

ssize_t fz_io_run(struct fz_io *io)
{
    struct fz_fd *began = fz_fd_get(io->fd), *s = began;
    bool may_park = !io->dontwait && !fz_fd_nonblock(s);
    /* from before the first attempt: a signal handled anywhere in the call
     * ends it, as it would end the one blocking system call (park.h) */
    unsigned call = may_park ? fz_call_begin(fz_io_intr(s, io->dir)) : 0;
    ssize_t r = io_loop(&s, io, may_park);
    fz_fd_call_over(began, s);
    fz_call_end(call);
    return r;
}

static ssize_t rw(int fd, int dir, const struct iovec *iov, int n)
{
    struct iovec copy[FZ_IOV_MAX];
    if (n < 0 || !fz_iov_copy(copy, iov, (size_t)n))
        return FZ_FALLBACK;
    struct msghdr m = {.msg_iov = copy, .msg_iovlen = (size_t)n};
    struct fz_io io = {.fd = fd, .dir = dir, .all = dir == FZ_WRITE, .msg = &m};
    int saved_errno = errno;
    ssize_t r = fz_io_run(&io);
    struct fz_fd *s = fz_fd_get(fd);
    if (r < 0 && errno == EOPNOTSUPP && s && !fz_fd_no_nowait(s)) {
        /* no RWF_NOWAIT here (the first attempt said so, nothing moved):
         * probe with poll from now on */
        fz_fd_set_no_nowait(s);
        errno = saved_errno;
        r = fz_io_run(&io);
    }
    return r;
}

FZ_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
    if (fz_io_pollable(fd)) {
        struct iovec v = {buf, len};
        ssize_t r = rw(fd, FZ_READ, &v, 1);
        if (r != FZ_FALLBACK)
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
        if (r != FZ_FALLBACK)
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
        if (r != FZ_FALLBACK)
            return r;
    }
    return fz_real.readv(fd, iov, n);
}

FZ_EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
    if (fz_io_pollable(fd)) {
        ssize_t r = rw(fd, FZ_WRITE, iov, n);
        if (r != FZ_FALLBACK)
            return r;
    }
    return fz_real.writev(fd, iov, n);
}

/* ---- sendfile -------------------------------------------------------- */

/* Bytes out_fd takes now without blocking, conservatively: half the free
 * send buffer of a socket (the kernel counts buffer overhead too), the free
 * part of a pipe.  ROOM_UNKNOWN for other fds (a terminal): the rest goes
 * to the real call. */
#define ROOM_UNKNOWN ((size_t)-1)
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
    if (size <= 0)
        return ROOM_UNKNOWN;
    if (fz_real.ioctl(fd, FIONREAD, &queued) != 0 || queued >= size)
        return 0;
    return (size_t)(size - queued);
}

/* sendfile has no per-call non-blocking form, so a blocking out_fd gets
 * pieces no larger than the room it has, parking whenever it has none.
 * Like a blocking write, it returns once every byte moved, at end of
 * input, or with the partial count when an error or signal cuts it short. */
static ssize_t sendfile_loop(struct fz_fd **sp, int out, int in, off_t *offset, size_t count)
{
    struct fz_fd *s = *sp, *began = s;
    uint32_t gen = fz_fd_gen(s);
    uint64_t deadline = fz_io_deadline(s, FZ_WRITE);
    int saved_errno = errno;
    ssize_t moved = 0;
    int kept = fz_fd_take_error(s);
    if (kept)
        return fail(s, 0, kept);
    while ((size_t)moved < count) {
        uint32_t seq = fz_fd_seq(s, FZ_WRITE);
        size_t room = room_for(out);
        if (room == 0) {
            int err = fz_io_wait_following(began, sp, &gen, FZ_WRITE, seq, deadline, EAGAIN);
            s = *sp;
            if (err)
                return fail(s, moved, err);
            out = fz_fd_number(s); /* a close moved the file (reactor.h) */
            continue;
        }
        size_t piece = count - (size_t)moved < room ? count - (size_t)moved : room;
        ssize_t r = fz_real.sendfile(out, in, offset, piece);
        if (r < 0)
            fz_io_sigpipe_to_fiber(0);
        if (room == ROOM_UNKNOWN)
            return r < 0 ? fail(s, moved, errno) : moved + r;
        if (r < 0)
            return fail(s, moved, errno);
        moved += r;
        if (r == 0 || (size_t)r < piece)
            break; /* end of input (or the socket took less: return as natively) */
    }
    errno = saved_errno;
    return moved;
}

static ssize_t sendfile_parked(struct fz_fd *s, int out, int in, off_t *offset, size_t count)
{
    unsigned call = fz_call_begin(fz_io_intr(s, FZ_WRITE));
    struct fz_fd *began = s;
    ssize_t r = sendfile_loop(&s, out, in, offset, count);
    fz_fd_call_over(began, s);
    fz_call_end(call);
    return r;
}

FZ_EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
    if (count == 0 || !fz_io_pollable(out))
        return fz_real.sendfile(out, in, offset, count);
    struct fz_fd *s = fz_fd_get(out);
    if (!fz_fd_nonblock(s))
        return sendfile_parked(s, out, in, offset, count);
    ssize_t r = fz_real.sendfile(out, in, offset, count);
    if (r < 0)
        fz_io_sigpipe_to_fiber(0);
    return r;
}

FZ_EXPORT ssize_t sendfile64(int out, int in, off_t *offset, size_t count)
    __attribute__((alias("sendfile")));
