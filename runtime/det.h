/* Deterministic schedules (fiberize --seed N): which fiber runs next,
 * decided by a PRNG seeded with N, on one carrier, on a virtual clock.
 * runtime/det.c explains the strategy; sched.c calls in at its decision
 * points; the interposers mark the program's scheduling points. */
#ifndef FZ_DET_H
#define FZ_DET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fz_fiber;
struct fz_carrier;

/* The most priority-change points a run takes (FIBERIZE_SEED_DEPTH - 1). */
#define FZ_DET_MAX_DEPTH 16u

struct fz_det_settings {
    uint64_t seed;  /* FIBERIZE_SEED */
    unsigned depth; /* PCT's d: bugs of depth d are found; d - 1 change points */
    uint64_t steps; /* PCT's k: scheduling points a run is expected to have */
    const char
        *report; /* file the run's summary is written to at exit, or NULL; kept, not copied */
    /* writes a fiber dump to an fd (preload/'s, with backtraces), or NULL */
    void (*dump)(int fd);
};

/* Written once, before the first carrier exists (fz_det_setup). */
extern bool fz_det_on;

/* Turn deterministic scheduling on.  Before fz_sched_start, which must
 * then start one carrier. */
void fz_det_setup(const struct fz_det_settings *s);

/* ---- the scheduler's side (carrier 0, or a fiber running on it) ---- */

/* f became runnable.  From the carrier or a fiber on it: into the run set
 * at once.  From any other thread (a pool thread finishing a call, a
 * thread that is not a fiber): into the arrivals, which the carrier takes
 * in only when nothing else can run (fz_det_admit). */
void fz_det_push(struct fz_fiber *f, bool on_carrier);
/* The runnable fiber of highest priority, taken out of the run set; NULL
 * if none.  Every pick is part of the schedule's fingerprint. */
struct fz_fiber *fz_det_pick(void);
/* At a scheduling point of `self`: the fiber that runs instead of it
 * (taken out of the run set; the caller puts self back), or NULL to go on.
 * forced: self yields (sched_yield): any other runnable fiber runs. */
struct fz_fiber *fz_det_preempt(struct fz_fiber *self, bool forced);
/* Nothing runnable: take in an arrival, oldest pool call first.  Returns
 * true if one was taken in; *wait set if a pool call is still out (the
 * carrier should sleep until an arrival). */
bool fz_det_admit(bool *wait);
/* A pool call is out (fz_det_admit said wait): sleep until a thread that
 * is not a fiber wakes one, at most `patience_ns` of real time.  True if
 * something arrived. */
bool fz_det_wait_arrival(uint64_t patience_ns);
/* Nothing runnable, nothing due, no pool call out: jump the virtual clock
 * to `deadline` (the next timer). */
void fz_det_advance_to(uint64_t deadline);
/* Input that came from outside the program (a blocking wait in the driver
 * returned something): the run may not replay exactly. */
void fz_det_saw_outside(const char *what);
/* Every live fiber waits on an address nobody else can wake: say so, with
 * each fiber, and end the process as abort() does. */
__attribute__((noreturn)) void fz_det_deadlock(void);
/* True if some live fiber may still be woken from outside (it waits on an
 * fd, a pool call, a signal): then the carrier sleeps instead. */
bool fz_det_outside_can_wake(void);

/* The program reads clock `clk` (CLOCK_REALTIME, _MONOTONIC and their
 * variants): the virtual time, which moves one step per read.  False for
 * clocks that stay real (CPU-time clocks, CLOCK_TAI...). */
bool fz_det_program_clock(int clk, uint64_t *ns);
/* fork child: the run set and the pool FIFO held the parent's fibers. */
void fz_det_after_fork(void);

/* ---- pool calls (runtime/pool.c) ---- */
void fz_det_pool_sent(struct fz_fiber *f);
void fz_det_pool_back(struct fz_fiber *f);

/* ---- reporting ---- */
/* " seed=N steps=S fingerprint=HEX outside=0|1", for the stats line. */
size_t fz_det_describe(char *buf, size_t len);
/* At process exit: the report file, and one line if outside input was seen. */
void fz_det_at_exit(void);

#endif
