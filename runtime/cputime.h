/* Per-fiber CPU time (runtime/cputime.c). */
#ifndef FZ_CPUTIME_H
#define FZ_CPUTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct fz_fiber;
struct fz_carrier;

extern atomic_bool fz_cputime_on;

/* The program asked for a thread CPU clock: account from now on. */
void fz_cputime_enable(struct fz_fiber *self);
/* Scheduler: self stops running on c / c starts running a fiber. */
void fz_cputime_stop(struct fz_carrier *c, struct fz_fiber *self);
void fz_cputime_start(struct fz_carrier *c);
/* f's CPU time in ns (self: up to now). */
uint64_t fz_cputime_of(struct fz_fiber *f, struct fz_fiber *self);
/* A fork child's fiber: its clock is the child thread's own, ns so far
 * (no reading of the parent's holds it up). */
void fz_cputime_restart(struct fz_fiber *f, uint64_t ns);

/* The kernel's encoding of an OS thread's CPU clock: (~tid << 3) |
 * PERTHREAD | type, in 32 bits (what pthread_getcpuclockid builds). */
#define FZ_CPUCLOCK_PERTHREAD 4
#define FZ_CPUCLOCK_SCHED 2
static inline clockid_t fz_kernel_thread_clock(pid_t tid)
{
    return (clockid_t)(((unsigned)~tid << 3) | FZ_CPUCLOCK_PERTHREAD | FZ_CPUCLOCK_SCHED);
}
/* A CPU clock's reading in ns by a raw system call (no TLS touched); 0 when
 * the kernel refuses it. */
uint64_t fz_cpu_clock_ns(clockid_t clk);

#endif
