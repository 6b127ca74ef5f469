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

#include <sys/types.h>
/* The monitor's OS thread id once it runs (0 before), for dumps. */
extern pid_t fz_monitor_tid;

#endif
