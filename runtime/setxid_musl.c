/* set*id on musl, for a process whose threads are fibers.
 *
 * Linux keeps credentials per OS thread; POSIX wants setuid & co. to change
 * the whole process, so libcs make the call on every thread.  musl's
 * __synccall signals each thread on its own list by the tid in its TCB and
 * lets the handler act only where the loaded TCB holds the target tid, and
 * from a caller whose TCB tid is not its kernel tid it gives up and acts on
 * the caller alone.  Under fiberize both fail: fibers' TCBs carry fake tids
 * and carriers run with fibers' TCBs loaded.  So syscalls/thread_musl.c
 * sends set*id here, which does the broadcast by kernel tids only: every
 * task in /proc/self/task gets SIGSYNCCALL (34, one of musl's internal
 * signals, which musl never lets a program block or handle), and its
 * handler makes the same raw system call and reports back.
 *
 * Limits: a thread created while the broadcast runs may keep the old
 * credentials (musl's own version holds its thread-list lock; ours cannot);
 * a thread that keeps SIGSYNCCALL blocked (only musl's own code does, for
 * moments) delays the caller until it unblocks.
 *
 * Threads: the broadcast runs on the calling fiber's carrier, blocking it
 * (set*id is rare); one at a time (broadcast_lock); the handler runs in
 * signal context on any thread and uses raw system calls only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <linux/futex.h>
#include "runtime/setxid.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

enum { SIGSYNCCALL = 34 };

static fz_spinlock broadcast_lock;
static struct {
    long nr, a, b, c;
    atomic_int target; /* the tid that should act now */
    atomic_int acked;  /* bumped by it when done */
    atomic_long result;
} call;

static void on_sigsynccall(int sig, siginfo_t *info, void *context)
{
    (void)sig, (void)info, (void)context;
    int saved_errno = errno;
    if ((int)fz_sys0(SYS_gettid) == atomic_load(&call.target)) {
        atomic_store(&call.result, fz_sys3(call.nr, call.a, call.b, call.c));
        atomic_store(&call.target, 0);
        atomic_fetch_add(&call.acked, 1);
        fz_sys3(SYS_futex, &call.acked, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1);
    }
    errno = saved_errno;
}

/* Have task tid make the call; false if it is gone. */
static bool call_on(int pid, int tid)
{
    int before = atomic_load(&call.acked);
    atomic_store(&call.target, tid);
    if (fz_sys3(SYS_tgkill, pid, tid, SIGSYNCCALL) != 0) {
        atomic_store(&call.target, 0);
        return false;
    }
    while (atomic_load(&call.acked) == before) {
        struct timespec ms = {0, 1000000};
        fz_sys4(SYS_futex, &call.acked, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, before, &ms);
        /* a task that exited before its handler ran never acks */
        if (atomic_load(&call.acked) == before && fz_sys3(SYS_tgkill, pid, tid, 0) != 0) {
            atomic_store(&call.target, 0);
            return false;
        }
    }
    return true;
}

struct linux_dirent64 {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

static void every_other_task(int pid, int self)
{
    int dir = (int)fz_sys4(SYS_openat, AT_FDCWD, "/proc/self/task",
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0)
        return;
    char buf[4096];
    long n;
    while ((n = fz_sys3(SYS_getdents64, dir, buf, sizeof buf)) > 0)
        for (long at = 0; at < n;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + at);
            at += d->reclen;
            int tid = 0;
            for (const char *p = d->name; *p >= '0' && *p <= '9'; p++)
                tid = tid * 10 + (*p - '0');
            if (tid <= 0 || tid == self)
                continue;
            if (call_on(pid, tid) && atomic_load(&call.result) != 0) {
                /* credentials now differ between threads: musl's answer */
                fz_sys2(SYS_kill, pid, SIGKILL);
            }
        }
    fz_sys1(SYS_close, dir);
}

long fz_setxid_broadcast(long nr, long a, long b, long c)
{
    fz_spin_lock(&broadcast_lock);
    long ret = fz_sys3(nr, a, b, c);
    if (ret == 0) {
        call.nr = nr, call.a = a, call.b = b, call.c = c;
        struct fz_kernel_sigaction act = {on_sigsynccall, SA_SIGINFO | SA_RESTART | FZ_SA_RESTORER,
                                          fz_signal_restorer, ~0ull};
        struct fz_kernel_sigaction old;
        if (fz_sys4(SYS_rt_sigaction, SIGSYNCCALL, &act, &old, 8) == 0) {
            every_other_task((int)fz_sys0(SYS_getpid), (int)fz_sys0(SYS_gettid));
            fz_sys4(SYS_rt_sigaction, SIGSYNCCALL, &old, NULL, 8);
        }
    }
    fz_spin_unlock(&broadcast_lock);
    return ret;
}
