/* The runtime's own file descriptors, kept out of the program's reach.
 *
 * The driver's epoll and eventfd live as long as the runtime; pidfds
 * (waitpid) and signalfds (sigtimedwait) live for one wait.  Natively none
 * of them exists, so the program must not see, close, replace or trip over
 * them.  Each is moved to a high number at once (CLOEXEC, so an exec'd
 * program never inherits it) and registered here; the interposers of
 * close, closefrom, close_range, dup2/dup3, fcntl and directory listings
 * ask fz_runtime_owns_fd and act as if the fd did not exist.
 *
 * Where "high" is (ownfd.c): lasting fds go just above the RLIMIT_NOFILE
 * soft limit, which the program's own allocations (lowest free number
 * below the limit), dup2 (EBADF at or above it) and close loops up to
 * sysconf(_SC_OPEN_MAX) never reach; per-wait fds go to the top 64
 * numbers below the limit.
 */
#ifndef FZ_OWNFD_H
#define FZ_OWNFD_H

#include <stdbool.h>

/* Start-up, single-threaded: note the limits placement works with. */
void fz_ownfd_init(void);

/* True if fd is one of the runtime's own.  A load and a compare for every
 * fd below the lowest owned one (all of the program's, as a rule). */
bool fz_runtime_owns_fd(int fd);

/* Move *holder's fd high and register it; *holder follows the fd if it is
 * moved again (fz_ownfd_move_away), so it must stay valid until release.
 * lasting (start-up, fork child: single-threaded): may raise the soft limit
 * for an instant to place it above; if it cannot move, it stays where it
 * is, registered.  Otherwise (a per-wait fd) a failure closes it and
 * returns false: the caller waits another way. */
bool fz_ownfd_adopt(int *holder, bool lasting);
/* A per-wait copy of fd (the program's), made straight into the band so
 * that no low number is taken even for an instant; registered as above.
 * false (*holder -1) when no number or slot is free. */
bool fz_ownfd_dup(int fd, int *holder);
/* Unregister and close *holder's fd; *holder becomes -1. */
void fz_ownfd_release(int *holder);

/* The program targets owned fd (dup2/dup3 onto it, or it raised its limit
 * and wants the number): move ours elsewhere.  0, or an errno value (no
 * free number left above the band's floor). */
int fz_ownfd_move_away(int fd);

/* Owned fds in [first, last], ascending, at most max of them; returns how
 * many were stored (a range close closes around them). */
int fz_ownfd_list(unsigned first, unsigned last, int *out, int max);

/* fork child: the other fibers' per-wait fds came along and the driver's
 * are the parent's instances: close them all and forget them. */
void fz_ownfd_after_fork(void);

#endif
