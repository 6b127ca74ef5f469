/* The one I/O loop every fd interposer uses: attempt without blocking,
 * park on readiness, retry. */
#ifndef FZ_IO_H
#define FZ_IO_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

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

#endif
