/* Thread CPU clocks of fibers.
 *
 * clock_gettime(CLOCK_THREAD_CPUTIME_ID), the clock pthread_getcpuclockid
 * gives for a fiber, and getrusage(RUSAGE_THREAD) answer the fiber's own
 * CPU time (runtime/cputime.c), not the carrier's, which jumps when the
 * fiber migrates.  A fiber's clock id is the kernel's encoding of a thread
 * CPU clock with the fiber's tid, so it names no kernel thread (the main
 * fiber's names the main OS thread, carrier 0, if handed to the kernel
 * behind our back).  Every other clock goes straight to the real
 * clock_gettime -- the runtime's own monotonic reads pass through here too,
 * touching no TLS.
 */
#include <errno.h>
#include <sys/resource.h>
#include <time.h>
#include "runtime/cputime.h"
#include "runtime/identity.h"
#include "syscalls/hook.h"

/* The kernel's encoding of a thread CPU clock (runtime/cputime.h) holds 29
 * bits of tid.  Fake tids (0x20000000+n, runtime/tls_glibc.c) do not fit: a
 * fiber's clock carries n with the type the kernel does not know (3), so
 * the kernel refuses it (EINVAL) and it never names a real thread; the
 * main fiber's is the native one of the pid. */
#define CPUCLOCK_FIBER 3
#define FAKE_TID_BASE 0x20000000

static clockid_t thread_clock(pid_t tid)
{
    if (tid >= FAKE_TID_BASE)
        return (clockid_t)(((unsigned)~(tid - FAKE_TID_BASE) << 3) | FZ_CPUCLOCK_PERTHREAD |
                           CPUCLOCK_FIBER);
    return fz_kernel_thread_clock(tid);
}

/* The fiber a CPU clock names (self for the calling thread's), or NULL. */
static struct fz_fiber *clock_fiber(clockid_t clk, struct fz_fiber *self)
{
    if (clk == CLOCK_THREAD_CPUTIME_ID)
        return self;
    if (clk >= 0 || !(clk & FZ_CPUCLOCK_PERTHREAD) || !self)
        return NULL;
    pid_t tid = ~(clk >> 3);
    if ((clk & 3) == CPUCLOCK_FIBER)
        return fz_ident_lookup(tid + FAKE_TID_BASE);
    return tid == 0 ? self : fz_ident_lookup(tid);
}

static struct timespec ns_ts(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

FZ_EXPORT int clock_gettime(clockid_t clk, struct timespec *ts)
{
    uint64_t virtual_ns;
    if (__builtin_expect(fz_det_on, 0) && fz_det_program_clock(clk, &virtual_ns)) {
        *ts = ns_ts(virtual_ns); /* fiberize --seed: the schedule's time */
        return 0;
    }
    if (__builtin_expect(clk >= 0 && clk != CLOCK_THREAD_CPUTIME_ID, 1))
        return fz_real.clock_gettime(clk, ts);
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    struct fz_fiber *f = clock_fiber(clk, self);
    if (!f)
        return fz_real.clock_gettime(clk, ts);
    fz_cputime_enable(self);
    *ts = ns_ts(fz_cputime_of(f, self));
    return 0;
}

FZ_EXPORT int clock_getres(clockid_t clk, struct timespec *res)
{
    struct fz_fiber *self = clk < 0 ? fz_hook_self(FZ_HOOK_THREAD) : NULL;
    if (!clock_fiber(clk, self))
        return fz_real.clock_getres(clk, res);
    if (res)
        *res = (struct timespec){0, 1};
    return 0;
}

FZ_EXPORT int pthread_getcpuclockid(pthread_t th, clockid_t *clk)
{
    struct fz_fiber *f = fz_hook_active(FZ_HOOK_THREAD) && th ? fz_tcb_fiber((void *)th) : NULL;
    if (!f)
        return fz_real.pthread_getcpuclockid(th, clk);
    fz_cputime_enable(fz_self());
    *clk = thread_clock(f->tid);
    return 0;
}

/* The carrier's usage, with the fiber's CPU time split between user and
 * system time as the carrier's is. */
FZ_EXPORT int getrusage(int who, struct rusage *ru)
{
    struct fz_fiber *self = who == RUSAGE_THREAD ? fz_hook_self(FZ_HOOK_THREAD) : NULL;
    int r = fz_real.getrusage(who, ru);
    if (r != 0 || !self)
        return r;
    fz_cputime_enable(self);
    uint64_t cpu = fz_cputime_of(self, self);
    uint64_t user = (uint64_t)ru->ru_utime.tv_sec * 1000000u + (uint64_t)ru->ru_utime.tv_usec;
    uint64_t sys = (uint64_t)ru->ru_stime.tv_sec * 1000000u + (uint64_t)ru->ru_stime.tv_usec;
    uint64_t us = cpu / 1000u, mine_user = (user + sys) ? us * user / (user + sys) : us;
    ru->ru_utime = (struct timeval){(time_t)(mine_user / 1000000u), (long)(mine_user % 1000000u)};
    ru->ru_stime = (struct timeval){(time_t)((us - mine_user) / 1000000u),
                                    (long)((us - mine_user) % 1000000u)};
    return 0;
}
