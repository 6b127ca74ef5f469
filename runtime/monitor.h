/* The hand-off monitor: keeps fibers running while a carrier is stuck. */
#ifndef FZ_MONITOR_H
#define FZ_MONITOR_H

#include <stdint.h>

/* The hand-off period (FIBERIZE_HANDOFF_US), set once before the carriers
 * start: a carrier on one fiber this long is stuck. */
void fz_monitor_configure(uint64_t handoff_ns);

/* Start the monitor thread (after the carriers).  Without it the runtime
 * still works; a stuck carrier then just delays the fibers queued on it. */
void fz_monitor_start(void);
/* Make the monitor leave its loop; returns once it has, after which it
 * touches nothing of the runtime's (carrier 0, fz_sched_shrink). */
void fz_monitor_leave(void);
/* Then join its OS thread, so that it can be started again (main fiber). */
void fz_monitor_join(void);
/* fork child, rebuilding: the parent's monitor is not the child's. */
void fz_monitor_after_fork(void);

/* A fiber is about to make a call in place that usually returns at once
 * but may block its carrier in the kernel (fsync on a busy disk): the
 * monitor hands the carrier's queued fibers off once the call has lasted
 * FZ_BLOCKING_HANDOFF_NS (monitor.c), instead of the hand-off period.
 * Returns the carrier to pass to fz_blocking_exit (the fiber may be on
 * another one by then if a signal handler parked it).  No libc, errno kept. */
struct fz_fiber;
struct fz_carrier;
struct fz_carrier *fz_blocking_enter(struct fz_fiber *self);
void fz_blocking_exit(struct fz_carrier *c, struct fz_fiber *self);

#include <sys/types.h>
/* The monitor's OS thread id once it runs (0 before), for dumps. */
extern pid_t fz_monitor_tid;

#endif
