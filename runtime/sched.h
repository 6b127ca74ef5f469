/* The scheduler: carriers, run queues, parking and waking fibers. */
#ifndef FZ_SCHED_H
#define FZ_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include "runtime/det.h"
#include "runtime/fiber.h"

struct fz_runtime {
    bool active;           /* written once at start (and in a fork child) */
    pid_t pid;             /* the process the runtime runs in (see fz_in_vfork_child) */
    atomic_bool vm_clones; /* the program made a CLONE_VM child without a vfork mark */
    atomic_uint ncarriers; /* carriers started, spares included (grows, but
                              fz_sched_shrink leaves carrier 0 alone) */
    unsigned target;       /* carriers meant to run fibers (FIBERIZE_WORKERS) */
    unsigned capacity;     /* slots in carriers[]: target plus spares */
    /* the carriers to start at the first fz_spawn (0: started): the
     * program, or a fork child, has created no thread yet.  Written by the
     * main fiber while it is the only one; others read it relaxed. */
    unsigned carriers_later;
    /* a fork child that has not needed the runtime yet: the forking fiber,
     * around which it is rebuilt at the first call that needs fibers
     * (fz_fork_resume); NULL otherwise.  Written by the child's only
     * thread: at the fork (preload/init.c) and when it resumes. */
    struct fz_fiber *fork_pending;
    struct fz_carrier *carriers;
    atomic_uint stuck;          /* carriers the monitor found stuck */
    atomic_uint spares_running; /* spares not retired */
    atomic_ulong handoffs;
    atomic_ulong handoffs_by[FZ_STUCK_REASONS]; /* the same, by why (monitor.c) */
    atomic_int monitor_asleep;                  /* the monitor waits for a carrier to get busy */
    struct fz_fiber *main_fiber;
    struct fz_inject inject;
    fz_spinlock idle_lock;
    struct fz_carrier *idle_head;
    atomic_uint num_idle;
    atomic_uint num_searching; /* 0 or 1: a woken carrier looking for work (sched.c) */
    /* under idle_lock: the LIFO slot an idle carrier was last woken for */
    struct fz_carrier *offer_from;
    struct fz_lifo_seen offer_seen;
    uint64_t offer_time;
    atomic_uint live_fibers;
    atomic_bool main_exited;
    bool main_unwind_ready;         /* main() runs above an unwind point (init.c) */
    atomic_uint pending_interrupts; /* signal handlers ran (total) */
    /* ... per signal, by whether the handler that ran had SA_RESTART (the
     * program may change it before the scheduler acts on the count) */
    atomic_uint pending_signal[2][65];
    atomic_int handlers_running; /* program signal handlers running now */
    atomic_uint deferred_wakes;  /* wakes handlers left for the scheduler */
    /* signal masks (runtime/sigmask.c) */
    fz_spinlock mask_lock;
    unsigned unblocked_by[65];    /* live fibers not blocking each signal */
    atomic_ullong blocked_by_all; /* the kernel mask of idle carriers */
};

extern struct fz_runtime fz_rt;

/* The calling fiber is the program's only one, and the only carrier runs:
 * no thread has been created yet (go_live).  Only that fiber can make it
 * false, by creating one. */
static inline bool fz_sched_alone(void)
{
    return __atomic_load_n(&fz_rt.carriers_later, __ATOMIC_RELAXED) != 0;
}

/* Spare carriers the monitor may start beyond the target. */
#define FZ_MAX_SPARES 256u

/* Adopt the calling (main) thread as the first fiber and start ncarriers
 * carriers.  False if the runtime could not start (it stays off). */
bool fz_sched_start(unsigned ncarriers, const char **why);

/* Current fiber: switch out until someone calls fz_unpark on it.  The caller
 * has registered a wake source first (see park.h). */
void fz_park(struct fz_fiber *self);
/* A scheduling point of the program (a lock, an unlock, an interposed
 * call): under --seed the schedule may switch to another fiber here
 * (runtime/det.c).  Call only when fz_det_on. */
void fz_sched_point(struct fz_fiber *self);
/* Let other runnable fibers run; self stays runnable. */
void fz_yield(struct fz_fiber *self);
/* Make f runnable.  c is the carrier the caller runs on when it runs on the
 * scheduler path (driver, reaping); NULL means "find out" (fiber or not). */
void fz_unpark_on(struct fz_carrier *c, struct fz_fiber *f);
static inline void fz_unpark(struct fz_fiber *f)
{
    fz_unpark_on(NULL, f);
}
/* self, running, is about to park on an fd: its carrier's idle loop then
 * peeks at the driver before sleeping (sched.c).  The carrier's state is
 * the scheduler's; the reactor says what happened through this. */
static inline void fz_sched_parking_on_fd(struct fz_fiber *self)
{
    self->carrier->fd_parked = true;
    if (__builtin_expect(fz_det_on, 0) && !self->det_on_fd) {
        self->det_on_fd = true; /* until it runs again (fz_sched_resumed) */
        self->carrier->det_fd_waiters++;
    }
}
/* The runtime's clock (coarse or not), read by runtime code running on a
 * fiber of c, this OS thread's carrier.  The clock's code is libc's or the
 * vDSO's, not the runtime's text, so a signal landing there would run its
 * handler inside the runtime's work: with a waiter queued in fz_waiter_block
 * (a siglongjmp would leave it there, its frame gone), or with idle_lock
 * held in an offering wake (a handler's own wake would spin on it for
 * ever).  reading_clock makes the signal wait for a safe point instead
 * (fz_sigthread_may_run). */
static inline uint64_t fz_clock_on(struct fz_carrier *c, bool coarse)
{
    c->reading_clock = true;
    atomic_signal_fence(memory_order_seq_cst);
    uint64_t now = coarse ? fz_coarse_now_ns() : fz_now_ns();
    atomic_signal_fence(memory_order_seq_cst);
    c->reading_clock = false;
    return now;
}
/* A new fiber: runnable, preferably next on the creator's carrier. */
void fz_spawn(struct fz_fiber *f);
/* The exiting fiber leaves for good; its stack is released after the
 * switch, then joiners are woken (fiber.c's fz_fiber_reap). */
__attribute__((noreturn)) void fz_exit_switch(struct fz_fiber *self);
/* Called on every fiber right after it is switched in. */
void fz_sched_resumed(struct fz_fiber *self);
/* True in the child of vfork (or clone with CLONE_VM) between the clone and
 * its exec: it shares our memory, so it must not change runtime state the
 * parent still uses (fd state, signal tables).  A child of vfork or of
 * clone(CLONE_VM | CLONE_VFORK) has marked the fiber whose stack it runs on
 * (syscalls/process.c): no system call.  Only once the program has made a
 * CLONE_VM child of another kind (vm_clones) does this also ask getpid. */
bool fz_in_vfork_child(void);

/* From the main fiber when it is the only thread the program has left,
 * before a call whose outcome depends on the process having one OS thread
 * (fork, entering a namespace): end the other carriers, spares and the
 * monitor, and resume on carrier 0, the main thread's OS thread, as before
 * the first thread (the next one starts them again).  False, doing
 * nothing, when another fiber lives, a pool thread is left, or the
 * runtime is already one OS thread (or seeded, or off). */
bool fz_sched_shrink(void);

/* fork child: rebuild the runtime around self, the child's only thread.
 * False if it could not (the child then runs without it). */
bool fz_sched_after_fork(struct fz_fiber *self);

/* A fork child runs as a plain process, the runtime off, until it first
 * needs fibers (its first thread, pthread_exit...): then fz_fork_resume
 * calls fz_fork_rebuild (set by preload/, which owns the rebuild's order)
 * around the forking fiber, if the caller is that fiber's thread.  True if
 * the runtime is on now.  Costs one load when no rebuild is pending. */
extern bool (*fz_fork_rebuild)(struct fz_fiber *self);
bool fz_sched_fork_resume_slow(void);
static inline bool fz_fork_resume(void)
{
    return __builtin_expect(fz_rt.fork_pending != NULL, 0) && fz_sched_fork_resume_slow();
}
/* Make every idle carrier pass through its idle loop once (mask changes,
 * shrinking): each is taken off the idle list and woken. */
void fz_sched_kick_idle(void);

/* For the monitor: start spare carrier c (its slot
 * initialised, not yet published); move a stuck carrier's LIFO fiber to the
 * inject queue. */
bool fz_sched_start_carrier(struct fz_carrier *c);
void fz_sched_rescue_lifo(struct fz_carrier *c);
void fz_carrier_init(struct fz_carrier *c, unsigned index);

#endif
