/* What the fd interposers do about the runtime's own fds (runtime/ownfd.h):
 * a program never opened them, so for it they are numbers nothing is open
 * on.  close, dup, fcntl on one fail with EBADF as natively; dup2/dup3
 * onto one first move ours elsewhere, then do what the program asked. */
#ifndef FZ_FDGUARD_H
#define FZ_FDGUARD_H

#include <errno.h>
#include <stdbool.h>
#include <sys/types.h>
#include "runtime/ownfd.h"
#include "runtime/sched.h"

/* fd names one of ours: the call fails as on a closed number. */
static inline bool fz_fd_hidden(int fd)
{
    if (!fz_runtime_owns_fd(fd))
        return false;
    errno = EBADF;
    return true;
}

/* Before dup2/dup3 onto fd2: 0, or -1 with errno.  A vfork child has its
 * own fd table but our memory: its dup2 replaces only its own copy (it is
 * CLOEXEC anyway), and our registry must stay the parent's. */
static inline int fz_fd_make_room(int fd2)
{
    if (!fz_runtime_owns_fd(fd2) || fz_in_vfork_child())
        return 0;
    int err = fz_ownfd_move_away(fd2);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* Range closes and the syscall() forms: syscalls/fd.c. */
int fz_close_range_around(unsigned first, unsigned last, int flags);
/* syscall(number, ...) for the fd calls above and getdents64; false if
 * number is not one of them (*result untouched). */
bool fz_fd_syscall(long number, const long *arg, long *result);
/* Drop the runtime's own fds from n bytes of getdents64 records read from
 * directory fd: the new size (fdhide.c). */
ssize_t fz_fd_filter_records(int fd, char *buf, ssize_t n);

#endif
