/* Sockets and fd bookkeeping: recv/send families, accept, connect, and the
 * calls that create, replace or reconfigure fds.
 *
 * Bookkeeping (open, fclose and other creators are in fd.c): every fd
 * number returned by an interposed creator, and every fd closed or
 * replaced through an interposer, has its reactor state
 * forgotten (a new generation), so a fiber parked on a closed fd wakes with
 * EBADF and never with another file's events.  Flags and timeouts the
 * program sets (O_NONBLOCK via fcntl/ioctl, SO_RCVTIMEO/SO_SNDTIMEO) are
 * recorded so waits honour them without a system call per I/O.
 *
 * accept has no per-call non-blocking form: one fiber at a time checks
 * readiness with poll(0) and then accepts; the others park.  connect on a
 * blocking socket sets O_NONBLOCK only for the connect call itself (the
 * socket is the caller's, just created), then waits for writability and
 * reports SO_ERROR as the kernel would.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "runtime/reactor.h"
#include "syscalls/fdguard.h"
#include "syscalls/file.h"
#include "syscalls/hook.h"
#include "syscalls/io.h"

static int forget_result(int fd)
{
    if (fd >= 0 && fz_rt.active)
        fz_fd_forget(fd);
    return fd;
}

/* ---- data ------------------------------------------------------------ */

static ssize_t sock_io(int fd, int dir, struct msghdr *msg, int flags)
{
    struct iovec copy[FZ_IOV_MAX];
    struct msghdr m = *msg;
    if (!fz_iov_copy(copy, msg->msg_iov, m.msg_iovlen))
        return FZ_FALLBACK;
    m.msg_iov = copy;
    struct fz_io io = {.fd = fd,
                       .dir = dir,
                       .socket_call = true,
                       .dontwait = flags & MSG_DONTWAIT,
                       .all = dir == FZ_WRITE || (flags & MSG_WAITALL),
                       .flags = flags & ~MSG_DONTWAIT,
                       .msg = &m};
    ssize_t r = fz_io_run(&io);
    /* what the kernel filled in for the program */
    msg->msg_namelen = m.msg_namelen;
    msg->msg_controllen = m.msg_controllen;
    msg->msg_flags = m.msg_flags;
    return r;
}

FZ_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (fz_io_pollable(fd)) {
        ssize_t r = sock_io(fd, FZ_READ, msg, flags);
        if (r != FZ_FALLBACK)
            return r;
    }
    return fz_real.recvmsg(fd, msg, flags);
}

FZ_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (fz_io_pollable(fd)) {
        struct msghdr m = *msg;
        ssize_t r = sock_io(fd, FZ_WRITE, &m, flags);
        if (r != FZ_FALLBACK)
            return r;
    }
    return fz_real.sendmsg(fd, msg, flags);
}

FZ_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                           socklen_t *alen)
{
    if (!fz_io_pollable(fd))
        return fz_real.recvfrom(fd, buf, len, flags, addr, alen);
    struct iovec v = {buf, len};
    struct msghdr m = {
        .msg_name = addr, .msg_namelen = alen ? *alen : 0, .msg_iov = &v, .msg_iovlen = 1};
    ssize_t r = sock_io(fd, FZ_READ, &m, flags);
    if (r >= 0 && alen && addr)
        *alen = m.msg_namelen;
    return r;
}

FZ_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    return recvfrom(fd, buf, len, flags, NULL, NULL);
}

FZ_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                         const struct sockaddr *addr, socklen_t alen)
{
    if (!fz_io_pollable(fd))
        return fz_real.sendto(fd, buf, len, flags, addr, alen);
    struct iovec v = {(void *)buf, len};
    struct msghdr m = {
        .msg_name = (void *)addr, .msg_namelen = alen, .msg_iov = &v, .msg_iovlen = 1};
    return sock_io(fd, FZ_WRITE, &m, flags);
}

FZ_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    return sendto(fd, buf, len, flags, NULL, 0);
}

/* ---- batches --------------------------------------------------------- */

/* The datagrams of a blocking recvmmsg, parking whenever none is queued;
 * `until` is its own timeout (monotonic ns, 0 none). */
static int recvmmsg_loop(struct fz_fd **sp, int fd, struct mmsghdr *vec, unsigned vlen, int flags,
                         uint64_t until)
{
    struct fz_fd *s = *sp, *began = s;
    uint64_t deadline = fz_io_deadline(s, FZ_READ);
    uint32_t gen = fz_fd_gen(s);
    unsigned got = 0;
    int saved_errno = errno;
    for (;;) {
        uint32_t seq = fz_fd_seq(s, FZ_READ);
        int r = fz_real.recvmmsg(fd, vec + got, vlen - got, flags | MSG_DONTWAIT, NULL);
        if (r > 0) {
            got += (unsigned)r;
            if (got == vlen || (flags & MSG_WAITFORONE) || (until && fz_now_ns() >= until))
                break;
            continue;
        }
        int err = r < 0 && errno != EAGAIN ? errno : 0;
        if (!err && !got) /* nothing queued: a kept error is this call's */
            err = fz_fd_take_error(s);
        if (!err) {
            err = fz_io_wait_following(began, sp, &gen, FZ_READ, seq, deadline, EAGAIN);
            s = *sp;
            if (s)
                fd = fz_fd_number(s); /* a close moved the file (reactor.h) */
        }
        if (err) {
            if (got) { /* the kernel keeps such an error for the next call too */
                fz_io_keep_error(s, got, err);
                break;
            }
            errno = err;
            return -1;
        }
    }
    errno = saved_errno;
    return (int)got;
}

/* Natively a blocking recvmmsg waits for vlen datagrams (or one, with
 * MSG_WAITFORONE); its timeout is checked only after a datagram arrived,
 * and an error after some datagrams returns the count. */
FZ_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned vlen, fz_mmsg_flags flags,
                       struct timespec *timeout)
{
    if (!fz_io_pollable(fd) || vlen == 0 || (flags & MSG_DONTWAIT) ||
        (timeout && (!fz_timespec_valid(timeout) || timeout->tv_sec < 0)))
        return fz_real.recvmmsg(fd, vec, vlen, flags, timeout);
    struct fz_fd *s = fz_fd_get(fd);
    if (fz_fd_nonblock(s))
        return fz_real.recvmmsg(fd, vec, vlen, flags, timeout);
    unsigned call = fz_call_begin(fz_io_intr(s, FZ_READ));
    struct fz_fd *began = s;
    int r = recvmmsg_loop(&s, fd, vec, vlen, flags, timeout ? fz_rel_to_deadline(timeout) : 0);
    fz_fd_call_over(began, s);
    fz_call_end(call);
    return r;
}

/* A blocking sendmmsg sends every message whole: batches go out without
 * waiting, and a message the socket has no room for goes through sendmsg's
 * parking path (which also finishes a partly sent stream message). */
static int sendmmsg_loop(int fd, struct mmsghdr *vec, unsigned vlen, int flags)
{
    unsigned sent = 0;
    int saved_errno = errno;
    while (sent < vlen) {
        int r = fz_real.sendmmsg(fd, vec + sent, vlen - sent, flags | MSG_DONTWAIT);
        if (r < 0)
            fz_io_sigpipe_to_fiber(flags);
        if (r > 0) {
            sent += (unsigned)r;
            struct mmsghdr *last = &vec[sent - 1];
            if (last->msg_len >= fz_iov_total(&last->msg_hdr))
                continue;
            sent--; /* a stream socket took part of it: finish it below */
        } else if (r < 0 && errno != EAGAIN) {
            if (sent)
                break;
            return -1;
        }
        struct mmsghdr *m = &vec[sent];
        unsigned done = r > 0 ? m->msg_len : 0;
        struct iovec copy[FZ_IOV_MAX];
        struct msghdr h = m->msg_hdr;
        if (!fz_iov_copy(copy, h.msg_iov, h.msg_iovlen))
            return sent ? (int)sent : fz_real.sendmmsg(fd, vec, vlen, flags);
        h.msg_iov = copy;
        fz_iov_advance(&h, done);
        ssize_t more = sock_io(fd, FZ_WRITE, &h, flags);
        if (more < 0) {
            if (done) { /* the part that went out is this message's result */
                m->msg_len = done;
                sent++;
            }
            if (sent)
                break;
            return -1;
        }
        m->msg_len = done + (unsigned)more;
        sent++;
    }
    errno = saved_errno;
    return (int)sent;
}

FZ_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned vlen, fz_mmsg_flags flags)
{
    if (!fz_io_pollable(fd) || vlen == 0)
        return fz_real.sendmmsg(fd, vec, vlen, flags);
    struct fz_fd *s = fz_fd_get(fd);
    if ((flags & MSG_DONTWAIT) || fz_fd_nonblock(s)) {
        int r = fz_real.sendmmsg(fd, vec, vlen, flags);
        if (r < 0)
            fz_io_sigpipe_to_fiber(flags);
        return r;
    }
    unsigned call = fz_call_begin(fz_io_intr(s, FZ_WRITE));
    int r = sendmmsg_loop(fd, vec, vlen, flags);
    fz_call_end(call);
    return r;
}

/* ---- accept and connect ---------------------------------------------- */

/* Raw system calls: libc's poll and accept4 are cancellation points,
 * and a cancellation must not unwind a fiber that holds the fd's turn. */
static bool readable_now(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return fz_sys3(SYS_poll, &p, 1, 0) > 0;
}

static int accept_loop(struct fz_fd **sp, int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
    struct fz_fd *s = *sp, *began = s;
    uint32_t gen = fz_fd_gen(s);
    uint64_t deadline = fz_io_deadline(s, FZ_READ);
    for (;;) {
        uint32_t seq = fz_fd_seq(s, FZ_READ);
        fz_cancel_point();
        if (fz_fd_take_turn(s)) {
            int r = -1, err = EAGAIN;
            if (readable_now(fd)) {
                long k = fz_sys4(SYS_accept4, fd, addr, alen, flags);
                r = k < 0 ? -1 : (int)k;
                err = k < 0 ? (int)-k : 0;
            }
            /* only an accept that happened may leave more for the others */
            fz_fd_end_turn(s, r >= 0);
            if (r >= 0)
                return forget_result(r);
            if (err != EAGAIN) {
                errno = err;
                return -1;
            }
        }
        int err = fz_io_wait_following(began, sp, &gen, FZ_READ, seq, deadline, EAGAIN);
        s = *sp;
        if (err) {
            errno = err;
            return -1;
        }
        fd = fz_fd_number(s); /* a close moved the file (reactor.h) */
    }
}

static int accept_parked(struct fz_fd *s, int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
    unsigned call = fz_call_begin(fz_io_intr(s, FZ_READ));
    struct fz_fd *began = s;
    int r = accept_loop(&s, fd, addr, alen, flags);
    fz_fd_call_over(began, s);
    fz_call_end(call);
    return r;
}

FZ_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *alen, int flags)
{
    if (!fz_io_pollable(fd))
        return forget_result(fz_real.accept4(fd, addr, alen, flags));
    struct fz_fd *s = fz_fd_get(fd);
    if (fz_fd_nonblock(s))
        return forget_result(fz_real.accept4(fd, addr, alen, flags));
    return accept_parked(s, fd, addr, alen, flags);
}

FZ_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *alen)
{
    return accept4(fd, addr, alen, 0);
}

static bool writable_now(int fd)
{
    struct pollfd p = {fd, POLLOUT, 0};
    return fz_real.poll(&p, 1, 0) > 0;
}

static int connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

static int connect_parked(struct fz_fd *s, int fd, const struct sockaddr *addr, socklen_t alen)
{
    uint32_t gen = fz_fd_gen(s), seq = fz_fd_seq(s, FZ_WRITE);
    int saved_errno = errno;
    int fl = fz_real.fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    fz_real.fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int r = fz_real.connect(fd, addr, alen), err = errno;
    fz_real.fcntl(fd, F_SETFL, fl);
    if (r == 0 || err != EINPROGRESS) {
        errno = err;
        return r;
    }
    uint64_t deadline = fz_io_deadline(s, FZ_WRITE);
    while (!writable_now(fd)) {
        int wait_err = fz_io_wait(s, FZ_WRITE, seq, gen, deadline, EINPROGRESS);
        if (wait_err) {
            errno = wait_err;
            return -1;
        }
        seq = fz_fd_seq(s, FZ_WRITE);
    }
    errno = saved_errno;
    return connect_result(fd);
}

FZ_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t alen)
{
    if (!fz_io_pollable(fd))
        return fz_real.connect(fd, addr, alen);
    struct fz_fd *s = fz_fd_get(fd);
    if (fz_fd_nonblock(s))
        return fz_real.connect(fd, addr, alen);
    unsigned call = fz_call_begin(fz_io_intr(s, FZ_WRITE));
    int r = connect_parked(s, fd, addr, alen);
    fz_call_end(call);
    return r;
}

/* ---- creating, closing, reconfiguring fds ---------------------------- */

FZ_EXPORT int socket(int domain, int type, int protocol)
{
    return forget_result(fz_real.socket(domain, type, protocol));
}

FZ_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = fz_real.socketpair(domain, type, protocol, sv);
    if (r == 0) {
        forget_result(sv[0]);
        forget_result(sv[1]);
    }
    return r;
}

FZ_EXPORT int pipe2(int fds[2], int flags)
{
    int r = fz_real.pipe2(fds, flags);
    if (r == 0) {
        forget_result(fds[0]);
        forget_result(fds[1]);
    }
    return r;
}

FZ_EXPORT int pipe(int fds[2])
{
    return pipe2(fds, 0);
}

FZ_EXPORT int close(int fd)
{
    if (fz_fd_hidden(fd))
        return -1;
    if (fd < 0 || !fz_rt.active)
        return fz_real.close(fd);
    unsigned token = fz_fd_close(fd); /* parked calls keep the file (reactor.h) */
    int r = fz_real.close(fd);
    fz_fd_closed(fd, token); /* raw calls: errno stays the close's */
    return r;
}

FZ_EXPORT int dup(int fd)
{
    if (fz_fd_hidden(fd))
        return -1;
    return forget_result(fz_real.dup(fd));
}

/* dup2/dup3 close fd2's file first: parked calls keep it, as for close. */
static void closing_by_dup(int fd, int fd2)
{
    if (fd != fd2 && fd2 >= 0 && fz_rt.active)
        fz_fd_close(fd2);
}

FZ_EXPORT int dup2(int fd, int fd2)
{
    if (fz_fd_hidden(fd) || fz_fd_make_room(fd2) < 0)
        return -1;
    closing_by_dup(fd, fd2);
    int r = fz_real.dup2(fd, fd2);
    if (r >= 0 && fd != fd2)
        forget_result(r);
    return r;
}

FZ_EXPORT int dup3(int fd, int fd2, int flags)
{
    if (fz_fd_hidden(fd) || fz_fd_make_room(fd2) < 0)
        return -1;
    closing_by_dup(fd, fd2);
    return forget_result(fz_real.dup3(fd, fd2, flags));
}

FZ_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (fz_fd_hidden(fd))
        return -1;
    if (cmd == F_SETLKW || cmd == F_OFD_SETLKW)
        return fz_fcntl_lock_wait(fd, cmd, arg);
    int r = fz_real.fcntl(fd, cmd, arg);
    if (r < 0 || !fz_rt.active)
        return r;
    if (cmd == F_SETFL)
        fz_fd_set_nonblock(fd, (long)arg & O_NONBLOCK);
    else if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        forget_result(r);
    return r;
}

FZ_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

FZ_EXPORT int ioctl(int fd, fz_ioctl_request req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = fz_real.ioctl(fd, req, arg);
    if (r == 0 && req == FIONBIO && fz_rt.active && arg)
        fz_fd_set_nonblock(fd, *(int *)arg != 0);
    return r;
}

/* shutdown(SHUT_RD) must wake a fiber parked reading the socket, as it
 * wakes a thread blocked in recv natively; epoll may not report an edge
 * for every socket type, so the waiters are told to retry. */
FZ_EXPORT int shutdown(int fd, int how)
{
    int r = fz_real.shutdown(fd, how);
    if (r == 0 && fz_rt.active)
        fz_fd_kick(fd);
    return r;
}

/* SO_ERROR reports, and clears, a socket error a hidden retry took after a
 * partial transfer and kept for the program (io.h), as it reports the
 * pending error natively. */
FZ_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    if (level == SOL_SOCKET && name == SO_ERROR && fz_rt.active && val && len &&
        *len >= sizeof(int)) {
        struct fz_fd *s = fz_fd_get(fd);
        int err = s && fz_fd_kind(s) == FZ_FD_POLLABLE ? fz_fd_take_error(s) : 0;
        if (err) {
            *(int *)val = err;
            *len = sizeof(int);
            return 0;
        }
    }
    long r = fz_sys6(SYS_getsockopt, fd, level, name, (long)val, (long)len, 0);
    return (int)fz_sys_result(r); /* r: 0 or -errno */
}

FZ_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    int r = fz_real.setsockopt(fd, level, name, val, len);
    if (r == 0 && fz_rt.active && level == SOL_SOCKET &&
        (name == SO_RCVTIMEO || name == SO_SNDTIMEO) && len >= sizeof(struct timeval)) {
        const struct timeval *tv = val;
        uint64_t ns = (uint64_t)tv->tv_sec * 1000000000u + (uint64_t)tv->tv_usec * 1000u;
        fz_fd_set_timeout(fd, name == SO_RCVTIMEO ? FZ_READ : FZ_WRITE, ns);
    }
    return r;
}
