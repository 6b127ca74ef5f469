/* Raw system calls for the runtime.
 *
 * The scheduler runs with whatever thread pointer the carrier last loaded,
 * which may be the TCB of a fiber now running on another carrier.  So the
 * runtime never calls libc wrappers on that path (they write errno through
 * the thread pointer): these return -errno instead and touch no TLS.
 */
#ifndef FZ_SYS_H
#define FZ_SYS_H

#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <time.h>
#include "runtime/det.h"

static inline long fz_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    /* cppcheck does not read asm operands: ret is the asm's output */
    // cppcheck-suppress unassignedVariable
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    // cppcheck-suppress uninitvar
    return ret;
}

/* The kernel's struct sigaction, for the raw rt_sigaction the runtime uses
 * where libc's sigaction is interposed or refuses the signal (x86_64; both
 * libcs' own struct differs from it). */
struct fz_kernel_sigaction {
    void (*handler)(int, siginfo_t *, void *);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};
#define FZ_SA_RESTORER 0x04000000 /* the kernel's flag: restorer field is set */

/* rt_sigreturn, as the restorer of handlers installed with the raw
 * rt_sigaction (runtime/switch.S). */
void fz_signal_restorer(void);

#define fz_sys0(n) fz_sys6((n), 0, 0, 0, 0, 0, 0)
#define fz_sys1(n, a) fz_sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define fz_sys2(n, a, b) fz_sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define fz_sys3(n, a, b, c) fz_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define fz_sys4(n, a, b, c, d) fz_sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* n rounded up to a multiple of align, a power of two (a page size). */
static inline unsigned long fz_round_up(unsigned long n, unsigned long align)
{
    return (n + align - 1) & ~(align - 1);
}

/* Zero a table a fork child resets (its old contents were the parent's
 * other threads'): its whole pages are replaced by fresh anonymous ones,
 * which the kernel fills only when touched, instead of each being copied
 * on write and then cleared (a 64 KiB table cost a child 16 faults and
 * ~30 us).  Page-align such tables so no neighbour shares their pages;
 * the ragged ends, or all of it if the mapping fails, are cleared by
 * hand.  Only for tables no other thread can be using (a fork child's
 * rebuild): their contents are gone in one step. */
static inline void fz_zero_table(void *table, unsigned long bytes)
{
    char *p = (char *)table, *end = p + bytes;
    char *lo = (char *)fz_round_up((uintptr_t)p, 4096);
    char *hi = (char *)((uintptr_t)end & ~(uintptr_t)4095);
    if (lo < hi && fz_sys6(SYS_mmap, (long)lo, hi - lo, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0) == (long)lo) {
        __builtin_memset(p, 0, (unsigned long)(lo - p));
        __builtin_memset(hi, 0, (unsigned long)(end - hi));
        return;
    }
    __builtin_memset(p, 0, bytes);
}

/* Wait while *word == val; abs_deadline (CLOCK_MONOTONIC) may be NULL. */
static inline long fz_futex_wait(const void *word, uint32_t val,
                                 const struct timespec *abs_deadline)
{
    return fz_sys6(SYS_futex, (long)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val,
                   (long)abs_deadline, 0, (long)FUTEX_BITSET_MATCH_ANY);
}

static inline long fz_futex_wake(const void *word, int n)
{
    return fz_sys3(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n);
}

/* For words other processes may wait on too (process-shared objects, robust
 * mutexes, which glibc always waits on as shared). */
static inline long fz_futex_wake_shared(const void *word, int n)
{
    return fz_sys3(SYS_futex, word, FUTEX_WAKE, n);
}

static inline void fz_cpu_relax(void)
{
    __builtin_ia32_pause();
}

/* libc's clock_gettime, handed in at start-up by the constructor (the
 * program's symbol is fiberize's own interposer, which the runtime must not
 * call); until then, and in unit tests, the raw system call (timer.c). */
extern int (*fz_os_clock_gettime)(clockid_t, struct timespec *);

/* Under fiberize --seed (fz_det_on) time is virtual (runtime/det.c):
 * every deadline the runtime keeps is on fz_virtual_ns, which moves only at
 * scheduling points and when every fiber waits for a timer.  Written by
 * the one carrier; others read it (relaxed: a clock, not a protocol). */
extern uint64_t fz_virtual_ns;

/* A time the kernel gave (tv_nsec in range, tv_sec >= 0) in ns. */
static inline uint64_t fz_ts_to_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* CLOCK_MONOTONIC in ns, from the kernel: for the sleeps of OS threads. */
static inline uint64_t fz_real_now_ns(void)
{
    struct timespec ts;
    fz_os_clock_gettime(CLOCK_MONOTONIC, &ts);
    return fz_ts_to_ns(&ts);
}

/* A deadline on the runtime's clock, as a CLOCK_MONOTONIC time the kernel
 * can sleep until. */
static inline uint64_t fz_kernel_deadline(uint64_t deadline)
{
    if (__builtin_expect(!fz_det_on, 1))
        return deadline;
    uint64_t now = __atomic_load_n(&fz_virtual_ns, __ATOMIC_RELAXED);
    return fz_real_now_ns() + (deadline > now ? deadline - now : 0);
}

/* The runtime's clock: CLOCK_MONOTONIC in ns, or the virtual one.  libc's
 * clock_gettime goes through the vDSO (~26 ns here) and touches no TLS on
 * success, so it is safe on the scheduler path. */
static inline uint64_t fz_now_ns(void)
{
    if (__builtin_expect(fz_det_on, 0))
        return __atomic_load_n(&fz_virtual_ns, __ATOMIC_RELAXED);
    return fz_real_now_ns();
}

/* CLOCK_MONOTONIC_COARSE in ns: the vDSO reads a word the kernel updates
 * every tick (a few ns, a few ms of resolution), for time stamps that are
 * only ever shown to people. */
static inline uint64_t fz_coarse_now_ns(void)
{
    struct timespec ts;
    fz_os_clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return fz_ts_to_ns(&ts);
}

static inline struct timespec fz_ns_to_ts(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

#endif
