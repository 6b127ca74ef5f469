/* Range closes and fd listings, as if the runtime's own fds did not exist.
 *
 * Programs close "everything from 3 up" (closefrom, close_range, daemons,
 * shells, subprocess libraries) and list their fds (/proc/self/fd, the
 * fdinfo directory, /dev/fd).  Natively the runtime's epoll, eventfd and
 * per-wait fds are not there (runtime/ownfd.h): a range close closes
 * around them and still returns 0, and a listing of the process's own fd
 * directories (readdir, readdir_r, getdents64, scandir and their 64
 * forms) leaves their entries out.  Single-fd calls (close, dup2,
 * fcntl) are in net.c, through fdguard.h; syscall(2) reaches all of these
 * through fz_fd_syscall.
 *
 * Reactor state of the numbers closed is forgotten before the real call,
 * as close does: the range may be huge, but only numbers the reactor has
 * seen have state to drop.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "runtime/reactor.h"
#include "syscalls/fdguard.h"
#include "syscalls/hook.h"
#include "runtime/sys.h"

/* More than the runtime ever owns at once (ownfd.c's slots). */
#define MAX_OWNED 64

/* close_range(2) itself: glibc's wrapper is just the system call, and musl
 * 1.2.3 has no wrapper (a program there reaches it through syscall(2)). */
static int real_close_range(unsigned first, unsigned last, int flags)
{
    long r = fz_sys3(SYS_close_range, first, last, flags);
    return (int)fz_sys_result(r); /* r: 0 or -errno */
}

/* Parked calls keep their files (reactor.h).  Unlike close, a range
 * close does not wake calls that park while it is under way (fz_fd_closed
 * would need a token per number): such a call waits for its file's next
 * event, or its deadline. */
static void forget_range(unsigned first, unsigned last)
{
    if (!fz_rt.active)
        return;
    unsigned top = fz_fd_highest_known();
    for (unsigned fd = first; fd <= last && fd <= top; fd++)
        if (!fz_runtime_owns_fd((int)fd))
            fz_fd_close((int)fd);
}

/* The real close_range on [first, last] minus the owned fds: one call per
 * gap.  The first error is the result; 0 when every piece closed. */
int fz_close_range_around(unsigned first, unsigned last, int flags)
{
    int owned[MAX_OWNED];
    int n = first <= last ? fz_ownfd_list(first, last, owned, MAX_OWNED) : 0;
    if (n == 0)
        return real_close_range(first, last, flags);
    int result = 0, err = 0;
    bool called = false;
    unsigned lo = first;
    for (int i = 0; i <= n; i++) {
        bool tail = i == n;
        if (tail && (unsigned)owned[n - 1] == last)
            break; /* the range ends on one of ours */
        unsigned hi = tail ? last : (unsigned)owned[i] - 1;
        if (tail || (unsigned)owned[i] > lo) {
            called = true;
            if (real_close_range(lo, hi, flags) != 0 && result == 0) {
                result = -1;
                err = errno;
            }
        }
        if (!tail)
            lo = (unsigned)owned[i] + 1;
    }
    /* nothing but our fds in the range: the unsharing still happens */
    if (!called && (flags & CLOSE_RANGE_UNSHARE) && unshare(CLONE_FILES) != 0) {
        result = -1;
        err = errno;
    }
    if (result)
        errno = err;
    return result;
}

FZ_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    /* marking close-on-exec cannot hurt ours (they have it already) */
    if (flags & CLOSE_RANGE_CLOEXEC)
        return real_close_range(first, last, flags);
    forget_range(first, last);
    return fz_close_range_around(first, last, flags);
}

static int fd_number(const char *name);

/* glibc's closefrom never fails: with no close_range in the kernel (before
 * 5.9) it closes what /proc/self/fd lists -- read inside libc, unfiltered,
 * so this does that itself, through the filtered readdir and close. */
FZ_EXPORT void closefrom(int lowfd)
{
    unsigned first = lowfd < 0 ? 0 : (unsigned)lowfd;
    forget_range(first, ~0u);
    if (fz_close_range_around(first, ~0u, 0) == 0)
        return;
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        fz_real.closefrom(lowfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = fd_number(e->d_name);
        if (fd >= 0 && (unsigned)fd >= first && fd != dirfd(d))
            close(fd);
    }
    closedir(d);
}

/* ---- listings ---------------------------------------------------------- */

static int fd_number(const char *name)
{
    if (name[0] < '0' || name[0] > '9' || (name[0] == '0' && name[1]))
        return -1;
    long v = 0;
    for (; *name; name++) {
        if (*name < '0' || *name > '9' || v > 100000000)
            return -1;
        v = v * 10 + (*name - '0');
    }
    return (int)v;
}

/* Skip "<digits>/" at *p; false if there are none. */
static bool skip_number(const char **p, long *value)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (*s - '0');
    *value = v;
    *p = s;
    return true;
}

/* Is the directory open on dirfd this process's fd (or fdinfo) directory?
 * /proc/self/fd, /dev/fd, /proc/thread-self/fd and /proc/<pid>/... all
 * resolve to /proc/<pid>/fd or /proc/<pid>/task/<tid>/fd. */
static bool lists_own_fds(int dirfd)
{
    char link[64], target[128];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    int saved = errno;
    ssize_t n = readlink(link, target, sizeof target - 1);
    errno = saved;
    if (n <= 0)
        return false;
    target[n] = 0;
    const char *p = target;
    long pid, tid;
    if (strncmp(p, "/proc/", 6) != 0)
        return false;
    p += 6;
    if (!skip_number(&p, &pid) || pid != (long)getpid())
        return false;
    if (strncmp(p, "/task/", 6) == 0) {
        p += 6;
        if (!skip_number(&p, &tid))
            return false;
    }
    return strcmp(p, "/fd") == 0 || strcmp(p, "/fdinfo") == 0;
}

static bool hidden_entry(int dirfd, const char *name)
{
    int fd = fd_number(name);
    return fd >= 0 && fz_runtime_owns_fd(fd) && lists_own_fds(dirfd);
}

FZ_EXPORT struct dirent *readdir(DIR *d)
{
    struct dirent *e;
    do
        e = fz_real.readdir(d);
    while (e && hidden_entry(dirfd(d), e->d_name));
    return e;
}

FZ_EXPORT struct dirent64 *readdir64(DIR *d)
{
    struct dirent64 *e;
    do
        e = fz_real.readdir64(d);
    while (e && hidden_entry(dirfd(d), e->d_name));
    return e;
}

FZ_EXPORT int readdir_r(DIR *d, struct dirent *entry, struct dirent **result)
{
    int r;
    do
        r = fz_real.readdir_r(d, entry, result);
    while (r == 0 && *result && hidden_entry(dirfd(d), (*result)->d_name));
    return r;
}

FZ_EXPORT int readdir64_r(DIR *d, struct dirent64 *entry, struct dirent64 **result)
{
    int r;
    do
        r = fz_real.readdir64_r(d, entry, result);
    while (r == 0 && *result && hidden_entry(dirfd(d), (*result)->d_name));
    return r;
}

/* Drop hidden records from a getdents64 buffer of n bytes; the new size. */
ssize_t fz_fd_filter_records(int fd, char *buf, ssize_t n)
{
    int own_dir = -1; /* not asked yet */
    ssize_t at = 0;
    while (at < n) {
        struct dirent64 *e = (struct dirent64 *)(buf + at);
        unsigned short len = e->d_reclen;
        int num = fd_number(e->d_name);
        if (len == 0 || len > n - at)
            break; /* not a record: leave the rest as the kernel wrote it */
        if (num >= 0 && fz_runtime_owns_fd(num)) {
            if (own_dir < 0)
                own_dir = lists_own_fds(fd);
            if (own_dir) {
                memmove(buf + at, buf + at + len, (size_t)(n - at - len));
                n -= len;
                continue;
            }
        }
        at += len;
    }
    return n;
}

FZ_EXPORT ssize_t getdents64(int fd, void *buf, size_t count)
{
    for (;;) {
        ssize_t n = fz_real.getdents64(fd, buf, count);
        if (n <= 0)
            return n;
        n = fz_fd_filter_records(fd, buf, n);
        if (n > 0)
            return n; /* 0 would read as the end: read on instead */
    }
}

/* scandir reads the directory inside libc: its result is filtered.  Both
 * entry types keep the name at the same place for this purpose. */
#define SCAN_FILTER(name, entry)                                                                   \
    static int name(int dfd, const char *path, entry **list, int n)                                \
    {                                                                                              \
        int own_dir = -1, kept = 0;                                                                \
        for (int i = 0; i < n; i++) {                                                              \
            int num = fd_number(list[i]->d_name);                                                  \
            if (num >= 0 && fz_runtime_owns_fd(num)) {                                             \
                if (own_dir < 0) {                                                                 \
                    int saved = errno;                                                             \
                    int d = fz_real.openat(dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);         \
                    own_dir = d >= 0 && lists_own_fds(d);                                          \
                    if (d >= 0)                                                                    \
                        fz_real.close(d);                                                          \
                    errno = saved;                                                                 \
                }                                                                                  \
                if (own_dir) {                                                                     \
                    free(list[i]);                                                                 \
                    continue;                                                                      \
                }                                                                                  \
            }                                                                                      \
            list[kept++] = list[i];                                                                \
        }                                                                                          \
        return kept;                                                                               \
    }
SCAN_FILTER(drop_own, struct dirent)
SCAN_FILTER(drop_own64, struct dirent64)

FZ_EXPORT int scandirat(int dfd, const char *path, struct dirent ***list,
                        int (*keep)(const struct dirent *),
                        int (*order)(const struct dirent **, const struct dirent **))
{
    int n = fz_real.scandirat(dfd, path, list, keep, order);
    return n > 0 ? drop_own(dfd, path, *list, n) : n;
}

/* The libc's own scandir, not ours of AT_FDCWD: musl 1.2.3 has no
 * scandirat. */
FZ_EXPORT int scandir(const char *path, struct dirent ***list, int (*keep)(const struct dirent *),
                      int (*order)(const struct dirent **, const struct dirent **))
{
    int n = fz_real.scandir(path, list, keep, order);
    return n > 0 ? drop_own(AT_FDCWD, path, *list, n) : n;
}

FZ_EXPORT int scandirat64(int dfd, const char *path, struct dirent64 ***list,
                          int (*keep)(const struct dirent64 *),
                          int (*order)(const struct dirent64 **, const struct dirent64 **))
{
    int n = fz_real.scandirat64(dfd, path, list, keep, order);
    return n > 0 ? drop_own64(dfd, path, *list, n) : n;
}

FZ_EXPORT int scandir64(const char *path, struct dirent64 ***list,
                        int (*keep)(const struct dirent64 *),
                        int (*order)(const struct dirent64 **, const struct dirent64 **))
{
    int n = fz_real.scandir64(path, list, keep, order);
    return n > 0 ? drop_own64(AT_FDCWD, path, *list, n) : n;
}

/* ---- syscall(2) -------------------------------------------------------- */

bool fz_fd_syscall(long number, const long *a, long *result)
{
    switch (number) {
    case SYS_close:
        *result = close((int)a[0]);
        return true;
    case SYS_close_range:
        *result = close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
        return true;
    case SYS_dup:
        *result = dup((int)a[0]);
        return true;
    case SYS_dup2:
        *result = dup2((int)a[0], (int)a[1]);
        return true;
    case SYS_dup3:
        *result = dup3((int)a[0], (int)a[1], (int)a[2]);
        return true;
    case SYS_fcntl:
        if (!fz_fd_hidden((int)a[0]))
            return false; /* every other fcntl is the kernel's */
        *result = -1;
        return true;
    case SYS_getdents64:
        *result = getdents64((int)a[0], (void *)a[1], (size_t)a[2]);
        return true;
    default:
        return false;
    }
}
