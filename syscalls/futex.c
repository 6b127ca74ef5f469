/* syscall(SYS_futex, ...): private futex waits of fibers park on the
 * parking lot, keyed by the futex word's address.
 *
 * Waits (FUTEX_WAIT, FUTEX_WAIT_BITSET with FUTEX_PRIVATE_FLAG) issued by a
 * fiber park while *uaddr == val, as the kernel checks it: EAGAIN on a
 * mismatch, ETIMEDOUT (FUTEX_WAIT: relative time-out; WAIT_BITSET:
 * absolute, CLOCK_MONOTONIC or FUTEX_CLOCK_REALTIME), EINTR after any
 * signal handler.  Other callers wait in the kernel.
 *
 * Wakes and requeues, from any caller while the runtime is active, serve
 * both kinds of waiter: first the parked fibers (and parked threads), then
 * the kernel's waiters for what remains, and the total is returned.  The
 * value check of FUTEX_CMP_REQUEUE is done before the parking-lot requeue
 * and again by the kernel, not atomically with the former.  Shared
 * (non-private) waits and every other futex command (PI, waitv, ...) go to
 * the kernel and may block the carrier.
 *
 * The numbers that take or return a thread id (gettid, tgkill, tkill,
 * rt_tgsigqueueinfo) are syscalls/sigthread.c's; every other system call
 * number goes to glibc's syscall() unchanged, with all six arguments.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include "runtime/park.h"
#include "syscalls/fdguard.h"
#include "syscalls/hook.h"
#include "syscalls/ident.h"
#include "syscalls/sync.h"

struct futex_args {
    uint32_t *uaddr;
    int op; /* command without the flags */
    int flags;
    uint32_t val;
    const struct timespec *timeout; /* also val2 for requeues */
    uint32_t *uaddr2;
    uint32_t val3;
};

static long real_futex(const struct futex_args *a, int op, uint32_t val, long val2)
{
    return fz_real.syscall(SYS_futex, (long)a->uaddr, (long)(op | a->flags), (long)val, val2,
                           (long)a->uaddr2, (long)a->val3);
}

static long fail(int err)
{
    errno = err;
    return -1;
}

/* ---- waits -------------------------------------------------------------- */

struct value_check {
    uint32_t *uaddr;
    uint32_t val;
};

static bool value_unchanged(void *arg)
{
    struct value_check *v = arg;
    return __atomic_load_n(v->uaddr, __ATOMIC_SEQ_CST) == v->val;
}

static bool timeout_valid(const struct timespec *ts)
{
    return ts->tv_sec >= 0 && fz_timespec_valid(ts);
}

static long park_wait(const struct futex_args *a, uint32_t bits)
{
    uint64_t deadline = 0;
    if (a->timeout) {
        if (!timeout_valid(a->timeout))
            return fail(EINVAL);
        if (a->op == FUTEX_WAIT)
            deadline = fz_rel_to_deadline(a->timeout);
        else
            deadline = fz_abs_to_deadline(
                (a->flags & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC, a->timeout);
    }
    struct value_check v = {a->uaddr, a->val};
    int r = fz_park_addr(a->uaddr, bits, value_unchanged, &v, deadline, FZ_INTR_ALWAYS);
    return r ? fail(r) : 0;
}

/* ---- wakes and requeues ------------------------------------------------- */

/* The kernel wakes at least one waiter whatever the count (val <= 0 too). */
static unsigned wake_count(uint32_t val)
{
    return (int)val <= 0 ? 1u : val;
}

static long wake(const struct futex_args *a, uint32_t bits)
{
    unsigned max = wake_count(a->val);
    unsigned woken = fz_unpark_addr(a->uaddr, bits, max);
    if (woken == max)
        return woken;
    int saved = errno;
    long more = real_futex(a, a->op, max - woken, (long)a->timeout);
    if (more >= 0)
        return woken + more;
    if (woken == 0)
        return more; /* the kernel's error, errno set */
    errno = saved;
    return woken;
}

static long requeue(const struct futex_args *a)
{
    int nr_wake = (int)a->val, nr_requeue = (int)(long)a->timeout;
    if (nr_wake < 0 || nr_requeue < 0 || a->uaddr == a->uaddr2)
        return fail(EINVAL);
    if (a->op == FUTEX_CMP_REQUEUE && __atomic_load_n(a->uaddr, __ATOMIC_SEQ_CST) != a->val3)
        return fail(EAGAIN);
    unsigned total = fz_requeue_addr(a->uaddr, a->uaddr2, nr_wake, nr_requeue);
    /* the parking lot wakes first, so it moved only what exceeded nr_wake */
    unsigned woken = total < (unsigned)nr_wake ? total : (unsigned)nr_wake;
    unsigned moved = total - woken;
    int saved = errno;
    long more = real_futex(a, a->op, nr_wake - woken, (long)(nr_requeue - moved));
    if (more >= 0)
        return total + more;
    if (total == 0)
        return more;
    errno = saved;
    return total;
}

/* ---- classification ----------------------------------------------------- */

/* The result, or FZ_FALLBACK when the kernel should do it all. */

static long handle_futex(const struct futex_args *a)
{
    bool private = a->flags & FUTEX_PRIVATE_FLAG;
    bool realtime = a->flags & FUTEX_CLOCK_REALTIME;
    if (!a->uaddr || ((uintptr_t)a->uaddr & 3))
        return FZ_FALLBACK; /* EFAULT / EINVAL from the kernel */
    switch (a->op) {
    case FUTEX_WAIT:
        if (!private || !fz_hook_self(FZ_HOOK_SYNC))
            return FZ_FALLBACK;
        return park_wait(a, FUTEX_BITSET_MATCH_ANY);
    case FUTEX_WAIT_BITSET:
        if (!private || !a->val3 || !fz_hook_self(FZ_HOOK_SYNC))
            return FZ_FALLBACK;
        return park_wait(a, a->val3);
    case FUTEX_WAKE:
        return realtime ? FZ_FALLBACK : wake(a, FUTEX_BITSET_MATCH_ANY);
    case FUTEX_WAKE_BITSET:
        return realtime || !a->val3 ? FZ_FALLBACK : wake(a, a->val3);
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE:
        return realtime ? FZ_FALLBACK : requeue(a);
    default:
        return FZ_FALLBACK;
    }
}

/* Six arguments are read whatever the caller passed, as libc's syscall
 * does: the sixth comes from the caller's frame, a read ASan would report. */
FZ_EXPORT __attribute__((no_sanitize_address)) long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long arg[6];
    for (int i = 0; i < 6; i++)
        arg[i] = va_arg(ap, long);
    va_end(ap);
    long fd_result;
    if (number != SYS_futex && fz_fd_syscall(number, arg, &fd_result))
        return fd_result; /* close, close_range, dup*, getdents64: fdhide.c */
    if (number == SYS_futex && fz_sync_hooked()) {
        int op = (int)arg[1];
        struct futex_args a = {
            (uint32_t *)arg[0],
            op & FUTEX_CMD_MASK,
            op & ~FUTEX_CMD_MASK,
            (uint32_t)arg[2],
            (const struct timespec *)arg[3],
            (uint32_t *)arg[4],
            (uint32_t)arg[5],
        };
        long r = handle_futex(&a);
        if (r != FZ_FALLBACK)
            return r;
    }
    long r;
    if (fz_ident_syscall(number, arg, &r))
        return r;
    return fz_real.syscall(number, arg[0], arg[1], arg[2], arg[3], arg[4], arg[5]);
}
