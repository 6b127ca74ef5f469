/* Unit test for runtime/ownfd.c: where the runtime's own fds go and what
 * the registry answers.
 *
 * With a soft RLIMIT_NOFILE below the hard one, a lasting fd lands at the
 * soft limit (out of reach of the program's allocations) and the limit is
 * back where it was; a per-wait fd lands in the band below the limit; both
 * are close-on-exec and owned; a move follows through the holder; range
 * lists come sorted; release closes. */
#include "runtime/ownfd.h"

#include "tap.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

static bool cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC);
}

int main(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max > 1100) {
        rl.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    bool below_hard = rl.rlim_cur < rl.rlim_max;
    fz_ownfd_init();

    int lasting = open("/dev/null", O_RDONLY);
    int low = lasting;
    TAP_CHECK(fz_ownfd_adopt(&lasting, true), "a lasting fd is adopted");
    TAP_CHECK(!below_hard || lasting == (int)rl.rlim_cur, "it sits at the soft limit (%d)",
              lasting);
    struct rlimit after;
    getrlimit(RLIMIT_NOFILE, &after);
    TAP_CHECK(after.rlim_cur == rl.rlim_cur, "the soft limit is back (%ld)", (long)after.rlim_cur);
    TAP_CHECK(fcntl(low, F_GETFD) < 0, "its old number is closed");
    TAP_CHECK(cloexec(lasting), "it is close-on-exec");
    TAP_CHECK(fz_runtime_owns_fd(lasting), "it is owned");
    TAP_CHECK(!fz_runtime_owns_fd(0) && !fz_runtime_owns_fd(low), "0 and its old number are not");
    TAP_CHECK(open("/dev/null", O_RDONLY) == low, "the program gets the old number back");

    int wait_fd = open("/dev/null", O_RDONLY);
    TAP_CHECK(fz_ownfd_adopt(&wait_fd, false), "a per-wait fd is adopted");
    unsigned top = rl.rlim_cur < 4096 ? (unsigned)rl.rlim_cur : 4096;
    TAP_CHECK(wait_fd >= (int)top - 64 && wait_fd < (int)top, "it sits in the band below %u (%d)",
              top, wait_fd);
    TAP_CHECK(cloexec(wait_fd) && fz_runtime_owns_fd(wait_fd), "close-on-exec and owned");

    int listed[8];
    int n = fz_ownfd_list(0, ~0u, listed, 8);
    TAP_CHECK(n == 2 && listed[0] < listed[1], "both listed, ascending");
    TAP_CHECK(fz_ownfd_list(0, (unsigned)wait_fd - 1, listed, 8) == 0, "none below the band");

    int before = wait_fd;
    TAP_CHECK(fz_ownfd_move_away(before) == 0, "a move away succeeds");
    TAP_CHECK(wait_fd != before && fz_runtime_owns_fd(wait_fd) && !fz_runtime_owns_fd(before),
              "the holder follows (%d -> %d)", before, wait_fd);
    TAP_CHECK(fcntl(before, F_GETFD) < 0 && cloexec(wait_fd), "old number closed, new one CLOEXEC");
    TAP_CHECK(fz_ownfd_move_away(low) == 0 && fcntl(low, F_GETFD) >= 0,
              "moving a number that is not ours does nothing");

    int moved = wait_fd;
    fz_ownfd_release(&wait_fd);
    TAP_CHECK(wait_fd == -1 && fcntl(moved, F_GETFD) < 0 && !fz_runtime_owns_fd(moved),
              "release closes and forgets");
    int kept = lasting;
    fz_ownfd_after_fork();
    TAP_CHECK(lasting == -1 && fcntl(kept, F_GETFD) < 0 && !fz_runtime_owns_fd(kept),
              "after fork every owned fd is closed and forgotten");
    return tap_done();
}
