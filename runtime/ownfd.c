/* The runtime's own fds (see ownfd.h): where they go, and the registry.
 *
 * Placement.  The kernel hands out the lowest free number below the
 * RLIMIT_NOFILE soft limit, refuses dup2/dup3/F_DUPFD targets at or above
 * it, and programs close "every fd" up to sysconf(_SC_OPEN_MAX), which is
 * that limit; but fds that already sit above it keep working.  So a lasting
 * fd (created at start-up or in a fork child, while one thread runs) goes
 * to the first free number at or above the soft limit: the soft limit is
 * raised for the duration of one F_DUPFD_CLOEXEC and put back.  Only when
 * that is impossible (soft == hard) or would grow the kernel's fd table
 * past CAP entries (it is copied at every fork) does it go below, into the
 * band of the BAND numbers under min(soft, CAP).  Per-wait fds are made
 * while other threads run, when the limit must not move: they always go
 * into that band.  A program that raises its limit can reach the numbers;
 * that is what fz_ownfd_move_away is for.
 *
 * Registry.  SLOTS entries of (fd, holder), written under `lock` by
 * whoever adopts, moves or releases; read without it (an fd number is a
 * single atomic word) by fz_runtime_owns_fd and fz_ownfd_list.  `lowest`
 * is at most every registered fd, so the common question -- is the
 * program's fd 5 ours? -- is one load.  A holder points at the variable
 * the owner uses (the driver's, or a waiting fiber's local), and is
 * written only under `lock`.  Raw system calls only: the driver adopts on
 * the scheduler path's data, and no TLS may be touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include "runtime/ownfd.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

#define SLOTS 64
#define BAND 64
#define CAP 4096u

/* All the registry in one page, written in the parent at every per-wait
 * fd's adopt and release (a pidfd per waitpid) and in a fork child at
 * once: apart, `lowest` in .data and the slots in .bss were two pages for
 * each to copy after every fork (20 us apiece on a PVM guest).  At most
 * 2 KiB, aligned to that, so it never straddles a page. */
static struct {
    fz_spinlock lock;
    atomic_int lowest;
    struct {
        atomic_int fd; /* -1: free */
        int *holder;
        bool lasting;
    } slots[SLOTS];
} reg __attribute__((aligned(2048))) = {.lowest = INT_MAX};
_Static_assert(sizeof reg <= 2048, "the registry shares no page");
static unsigned band_floor = 3; /* per-wait fds: F_DUPFD from here */

static bool read_limit(struct rlimit *rl)
{
    return fz_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, 0, rl) == 0;
}

void fz_ownfd_init(void)
{
    for (int i = 0; i < SLOTS; i++)
        atomic_store(&reg.slots[i].fd, -1);
    atomic_store(&reg.lowest, INT_MAX);
    struct rlimit rl;
    unsigned top = CAP;
    if (read_limit(&rl) && rl.rlim_cur < CAP)
        top = (unsigned)rl.rlim_cur;
    band_floor = top > BAND + 3 ? top - BAND : 3;
}

/* A copy of fd at or above the soft limit, made while the limit is raised
 * for an instant; -1 if not possible.  Single-threaded callers only: another
 * thread could see (or reset) the raised limit meanwhile. */
static int dup_above_limit(int fd)
{
    struct rlimit rl;
    if (!read_limit(&rl) || rl.rlim_cur >= CAP || rl.rlim_max <= rl.rlim_cur)
        return -1;
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max - rl.rlim_cur > BAND ? rl.rlim_cur + BAND : rl.rlim_max;
    if (fz_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, &raised, 0) != 0)
        return -1;
    long nfd = fz_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, rl.rlim_cur);
    fz_sys4(SYS_prlimit64, 0, RLIMIT_NOFILE, &rl, 0);
    return nfd < 0 ? -1 : (int)nfd;
}

static int dup_into_band(int fd)
{
    long nfd = fz_sys3(SYS_fcntl, fd, F_DUPFD_CLOEXEC, band_floor);
    return nfd < 0 ? -1 : (int)nfd;
}

static void lower_lowest(int fd)
{
    if (fd < atomic_load_explicit(&reg.lowest, memory_order_relaxed))
        atomic_store(&reg.lowest, fd);
}

/* After a release or a move: the minimum over the registered fds. */
static void recompute_lowest(void)
{
    int low = INT_MAX;
    for (int i = 0; i < SLOTS; i++) {
        int fd = atomic_load_explicit(&reg.slots[i].fd, memory_order_relaxed);
        if (fd >= 0 && fd < low)
            low = fd;
    }
    atomic_store(&reg.lowest, low);
}

bool fz_runtime_owns_fd(int fd)
{
    if (fd < atomic_load_explicit(&reg.lowest, memory_order_acquire))
        return false;
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load_explicit(&reg.slots[i].fd, memory_order_acquire) == fd)
            return true;
    return false;
}

/* Register fd in a free slot, *holder following it; false if all are taken. */
static bool enlist(int *holder, int fd, bool lasting)
{
    fz_spin_lock(&reg.lock);
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load_explicit(&reg.slots[i].fd, memory_order_relaxed) < 0) {
            reg.slots[i].holder = holder;
            reg.slots[i].lasting = lasting;
            *holder = fd;
            lower_lowest(fd); /* before the fd is visible in a slot */
            atomic_store(&reg.slots[i].fd, fd);
            fz_spin_unlock(&reg.lock);
            return true;
        }
    }
    fz_spin_unlock(&reg.lock);
    return false;
}

bool fz_ownfd_adopt(int *holder, bool lasting)
{
    int fd = *holder;
    int moved = lasting ? dup_above_limit(fd) : -1;
    if (moved < 0)
        moved = dup_into_band(fd);
    if (moved < 0 && !lasting) {
        fz_sys1(SYS_close, fd);
        *holder = -1;
        return false;
    }
    if (moved >= 0) {
        fz_sys1(SYS_close, fd);
        fd = moved;
    } else {
        fz_sys3(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC); /* stays where it is */
    }
    if (enlist(holder, fd, lasting))
        return true;
    if (lasting) { /* cannot happen with the few lasting fds: keep it anyway */
        *holder = fd;
        return true;
    }
    fz_sys1(SYS_close, fd);
    *holder = -1;
    return false;
}

bool fz_ownfd_dup(int fd, int *holder)
{
    int copy = dup_into_band(fd);
    if (copy >= 0 && enlist(holder, copy, false))
        return true;
    if (copy >= 0)
        fz_sys1(SYS_close, copy);
    *holder = -1;
    return false;
}

void fz_ownfd_release(int *holder)
{
    fz_spin_lock(&reg.lock);
    int fd = *holder;
    for (int i = 0; i < SLOTS; i++) {
        if (reg.slots[i].holder == holder &&
            atomic_load_explicit(&reg.slots[i].fd, memory_order_relaxed) >= 0) {
            atomic_store(&reg.slots[i].fd, -1);
            reg.slots[i].holder = 0;
            recompute_lowest();
            break;
        }
    }
    *holder = -1;
    fz_spin_unlock(&reg.lock);
    if (fd >= 0)
        fz_sys1(SYS_close, fd);
}

int fz_ownfd_move_away(int fd)
{
    /* at or above the soft limit the kernel refuses the target itself
     * (EBADF), as it would natively: ours need not move */
    struct rlimit rl;
    if (read_limit(&rl) && (unsigned long)fd >= rl.rlim_cur)
        return 0;
    int old = -1;
    int err = 0;
    fz_spin_lock(&reg.lock);
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load_explicit(&reg.slots[i].fd, memory_order_relaxed) != fd)
            continue;
        int moved = dup_into_band(fd);
        if (moved < 0) {
            err = EMFILE; /* every number above the floor is taken */
            break;
        }
        /* the holder first: from now on the owner uses the new number */
        __atomic_store_n(reg.slots[i].holder, moved, __ATOMIC_RELEASE);
        lower_lowest(moved);
        atomic_store(&reg.slots[i].fd, moved);
        recompute_lowest();
        old = fd;
        break;
    }
    fz_spin_unlock(&reg.lock);
    if (old >= 0)
        fz_sys1(SYS_close, old);
    return err;
}

int fz_ownfd_list(unsigned first, unsigned last, int *out, int max)
{
    int n = 0, low = atomic_load_explicit(&reg.lowest, memory_order_acquire);
    if (low == INT_MAX || last < (unsigned)low)
        return 0;
    for (int i = 0; i < SLOTS && n < max; i++) {
        int fd = atomic_load_explicit(&reg.slots[i].fd, memory_order_acquire);
        if (fd < 0 || (unsigned)fd < first || (unsigned)fd > last)
            continue;
        int j = n++;
        for (; j > 0 && out[j - 1] > fd; j--) /* insertion: a handful of fds */
            out[j] = out[j - 1];
        out[j] = fd;
    }
    return n;
}

void fz_ownfd_after_fork(void)
{
    for (int i = 0; i < SLOTS; i++) {
        int fd = atomic_load_explicit(&reg.slots[i].fd, memory_order_relaxed);
        if (fd < 0)
            continue;
        fz_sys1(SYS_close, fd);
        /* a lasting holder is the driver's, which re-adopts; per-wait
         * holders lie on other fibers' stacks, which the child has not */
        if (reg.slots[i].lasting)
            *reg.slots[i].holder = -1;
        atomic_store(&reg.slots[i].fd, -1);
        reg.slots[i].holder = 0;
    }
    reg.lock = (fz_spinlock){0};
    atomic_store(&reg.lowest, INT_MAX);
}
