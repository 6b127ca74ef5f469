/* Per-fiber signal masks.
 *
 * Natively every thread has its own mask; under fiberize fibers share
 * carriers, so each fiber keeps its mask here.  A carrier running a fiber
 * has that fiber's mask loaded (the switch loads it when it differs from
 * what is loaded, which costs nothing while fibers share one mask), and an
 * idle carrier has the set of signals EVERY live fiber blocks.  So a signal
 * all threads block (the "block in main, then sigwait in one thread"
 * pattern) stays pending for sigwait and never hits a default action, and
 * a signal reaches only a carrier idle or running a fiber that accepts it.
 *
 * Signals 1..64 are bits 0..63 of a uint64_t, as in the kernel's sigset.
 */
#ifndef FZ_SIGMASK_H
#define FZ_SIGMASK_H

#include <stdbool.h>
#include <stdint.h>

struct fz_fiber;
struct fz_carrier;

/* The calling thread's real mask (64 bits). */
uint64_t fz_sigmask_current_kernel(void);
/* Bookkeeping for a fiber that starts or ends with `mask`. */
void fz_sigmask_fiber_born(struct fz_fiber *f, uint64_t mask);
void fz_sigmask_fiber_gone(struct fz_fiber *f);
/* self's mask becomes `mask`, loaded at once; idle carriers follow before
 * this returns when a signal became blocked by everyone. */
void fz_sigmask_change(struct fz_fiber *self, uint64_t mask);
/* Load mask into the calling carrier's kernel mask. */
void fz_sigmask_load(struct fz_carrier *c, uint64_t mask);
/* The mask a child process should start with when `self` forks or execs. */
uint64_t fz_sigmask_of(struct fz_fiber *self);

#endif
