/* The one I/O loop every fd interposer uses: attempt without blocking,
 * park on readiness, retry -- and the pieces its variants share (the
 * iovec copy, the wait after EAGAIN), so each is written once. */
#ifndef FZ_IO_H
#define FZ_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fz_fd;

struct fz_io {
    int fd;
    int dir;            /* FZ_READ or FZ_WRITE */
    bool socket_call;   /* recvmsg/sendmsg with MSG_DONTWAIT, else preadv2/pwritev2 RWF_NOWAIT */
    bool dontwait;      /* the program asked for this call not to block */
    bool all;           /* keep going until every byte moved (blocking writes, MSG_WAITALL) */
    int flags;          /* the program's socket flags */
    struct msghdr *msg; /* iovecs (advanced in place when `all`) */
};

/* Returns the real call's result; a fiber parks instead of blocking its
 * carrier.  Only for fds fz_io_pollable() said yes to. */
ssize_t fz_io_run(struct fz_io *io);
/* The calling fiber may park on fd (hooks on, fd registered with the
 * driver); otherwise the interposer makes the real call. */
bool fz_io_pollable(int fd);
/* A write to a pollable fd just failed (errno set): if it was EPIPE and
 * flags lack MSG_NOSIGNAL, the SIGPIPE the kernel raised is the calling
 * fiber's, not its carrier's (fz_sigthread_adopt_own).  errno is kept. */
void fz_io_sigpipe_to_fiber(int flags);

/* Iovecs an interposer copies to advance them over partial transfers; a
 * call with more goes to the real call (FZ_FALLBACK). */
#define FZ_IOV_MAX 64
/* Copy n iovecs into dst[FZ_IOV_MAX]; false if n is out of range. */
bool fz_iov_copy(struct iovec *dst, const struct iovec *src, size_t n);
size_t fz_iov_total(const struct msghdr *m);
/* Drop the first `done` bytes from m's iovecs (a copy: advanced in place). */
void fz_iov_advance(struct msghdr *m, size_t done);

/* A blocking call on fd s in direction dir: its SO_RCVTIMEO/SO_SNDTIMEO
 * deadline from now (0: none), and which handlers interrupt it (signal(7):
 * a socket call with a timeout is never restarted). */
uint64_t fz_io_deadline(struct fz_fd *s, int dir);
int fz_io_intr(struct fz_fd *s, int dir);
/* The wait after an attempt on s said EAGAIN (seq: the readiness sequence
 * taken before it; gen: the fd's generation when the call began).  0: try
 * again; else the errno the call reports: `timeout_errno` when the
 * deadline passed, EINTR (a pending cancellation acted on first), EBADF
 * when the fd was closed or replaced meanwhile. */
int fz_io_wait(struct fz_fd *s, int dir, uint32_t seq, uint32_t gen, uint64_t deadline,
               int timeout_errno);
/* The same for a call that goes on if the program closes the fd while it
 * waits (reactor.h's fz_fd_wait_following: *s and *gen may become a held
 * copy's, whose number the call uses from then on; *s is NULL after a
 * cancellation that did not unwind).  `began` is the entry the call
 * began on; it ends with fz_fd_call_over(began, its last *s). */
int fz_io_wait_following(const struct fz_fd *began, struct fz_fd **s, uint32_t *gen, int dir,
                         uint32_t seq, uint64_t deadline, int timeout_errno);
/* After a hidden retry (some bytes already moved in this call) got err:
 * keep it for the program's next call on s if the kernel reports it only
 * once (see reactor.h's fz_fd_keep_error).  Returns `moved`. */
ssize_t fz_io_keep_error(struct fz_fd *s, ssize_t moved, int err);

#endif
