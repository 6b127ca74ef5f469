/* Waiting: the one way anything in fiberize waits.
 *
 * A waiter (struct fz_waiter, on the waiting thread's stack) is registered
 * with one or more wake sources -- an address in the parking lot, a
 * deadline in the timer wheel, an fd in the reactor, signal handlers
 * (through its fiber's published wait) -- and then blocks.  Sources race
 * to wake it: the first to claim it (one CAS on `claimed`) sets the reason
 * and makes it run again; the others see the claim and leave it alone.
 * The waiter itself then withdraws from the sources that did not fire
 * before its stack frame goes away.
 *
 * Waiters are fibers (parked in the scheduler) or OS threads that are not
 * fibers (pool threads, foreign threads, carriers' idle state): those sleep
 * on a futex word in the waiter, with the deadline handed to the kernel.
 * Both kinds share the same queues, FIFO.
 */
#ifndef FZ_PARK_H
#define FZ_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "runtime/timer.h"

struct fz_fiber;
struct fz_carrier;

enum fz_wake_reason {
    FZ_WAKE_NONE = 0,
    FZ_WAKE_NOTIFIED, /* the awaited condition may hold now */
    FZ_WAKE_TIMEOUT,
    FZ_WAKE_INTERRUPT, /* a signal handler ran: the call reports EINTR */
    /* A signal handler is to run on the fiber and the wait then goes on (a
     * handler with SA_RESTART, or a wait signals never end): never
     * returned by the wait functions below, which wait again. */
    FZ_WAKE_RESTART,
};

/* Which signal handlers end a wait with EINTR (signal(7)): most calls are
 * restarted after a handler installed with SA_RESTART; sleeps, poll,
 * select, epoll_wait, sem_wait and futex waits never are. */
enum fz_intr {
    FZ_INTR_NONE = 0,
    FZ_INTR_NORESTART = 1, /* handlers without SA_RESTART (== true) */
    FZ_INTR_ALWAYS = 2,    /* any handler */
    /* A flag: the wait is a cancellation point even if no handler ends it
     * (condition waits, join).  Every interruptible wait is one too. */
    FZ_INTR_CANCEL = 4,
    /* A flag: a signal may end the wait but pthread_cancel does not, as for
     * flock, which POSIX does not list among the cancellation points. */
    FZ_INTR_NOCANCEL = 8,
};

/* What a wait is for, as a fiber dump tells it (runtime/dump.c). */
enum fz_wait_kind {
    FZ_WAIT_PLAIN = 0, /* an address (addr, when queued) and/or a deadline */
    FZ_WAIT_FD,        /* about: the fd, or minus the number of fds watched */
};

struct fz_waiter {
    struct fz_fiber *fiber; /* NULL: an OS thread sleeping on futex_word */
    atomic_int claimed;
    int reason;
    atomic_uint futex_word;
    uint64_t deadline; /* absolute CLOCK_MONOTONIC ns, 0 = none */
    struct fz_timer timer;
    int interruptible; /* FZ_INTR_NONE, _NORESTART or _ALWAYS */
    bool cancelable;   /* pthread_cancel ends it (see thread.c) */
    /* parking-lot linkage (guarded by the bucket lock) */
    struct fz_waiter *next, *prev;
    const void *addr;
    bool queued;
    uint32_t bits; /* futex bitset the waiter matches */
    uint8_t kind;  /* enum fz_wait_kind, for dumps */
    long about;
    uint64_t since; /* coarse ns it was published: the oldest wait is interrupted first */
};

/* Prepare w for the calling thread.  deadline 0 = wait forever.
 * interruptible (enum fz_intr): which signal handlers wake it with EINTR. */
void fz_waiter_init(struct fz_waiter *w, uint64_t deadline, int interruptible);
/* Block until a source claims w; returns the reason.  Withdraws w from
 * the timer wheel and its fiber's published wait.  Wake sources registered
 * by the caller (parking lot, reactor) are the caller's to withdraw. */
int fz_waiter_block(struct fz_waiter *w);
/* Claim w for `reason` and make it run.  False if another source won. */
bool fz_waiter_wake(struct fz_waiter *w, int reason);
/* Claim only: the caller must call fz_waiter_finish_wake after releasing
 * the locks it holds (so a wake never happens under a spinlock). */
bool fz_waiter_claim(struct fz_waiter *w, int reason);
void fz_waiter_finish_wake(struct fz_waiter *w);
/* Same, from carrier c's scheduler path (driver, reaping). */
void fz_waiter_finish_wake_on(struct fz_carrier *c, struct fz_waiter *w);

/* pthread_cancel of fiber f: end its wait if it is at a cancellation
 * point (the wait reports FZ_WAKE_INTERRUPT; the interposer then acts on
 * the cancellation, see hook.h's fz_cancel_point). */
void fz_cancel_wake(struct fz_fiber *f);

/* A signal was sent to fiber f, which may be parked: if it is, make it run
 * (its pending signal is raised when it is switched in, sigthread.c).
 * restart: -1 if no handler will run (default action), else the handler's
 * SA_RESTART (0 or 1), or 2 for a signal its sigwait takes.  A wait the
 * handler interrupts natively (fz_intr) ends with EINTR; any other goes on
 * once the handler has run.  The handler runs when the wait is torn down
 * (fz_wait_over), never inside it. */
void fz_wait_signal(struct fz_fiber *f, int restart);
/* Called by every wait function once its waiter is withdrawn from every
 * source (self NULL: not a fiber): runs the handlers of signals sent to
 * self.  A wait that got FZ_WAKE_RESTART then waits again. */
void fz_wait_over(struct fz_fiber *self);

/* Sleep until the absolute monotonic deadline.  Returns FZ_WAKE_TIMEOUT, or
 * FZ_WAKE_INTERRUPT if interruptible and a signal handler ran. */
int fz_sleep_until(uint64_t deadline, int interruptible);

/* Parking lot: wait queues keyed by address.
 * fz_park_addr blocks while validate(ctx) (checked under the queue lock)
 * holds.  Returns 0 when unparked, ETIMEDOUT, EINTR, or EAGAIN if validate
 * said no. */
int fz_park_addr(const void *addr, uint32_t bits, bool (*validate)(void *), void *ctx,
                 uint64_t deadline, int interruptible);
/* Wake up to max waiters on addr whose bits intersect `bits`, oldest first.
 * Returns how many were woken. */
unsigned fz_unpark_addr(const void *addr, uint32_t bits, unsigned max);
unsigned fz_unpark_addr_on(struct fz_carrier *c, const void *addr, uint32_t bits, unsigned max);
/* Move up to max waiters from addr to addr2 (after waking `wake` of them). */
unsigned fz_requeue_addr(const void *addr, const void *addr2, unsigned wake, unsigned max);

/* An interruptible call: natively one system call, under fiberize an
 * attempt, a park, another attempt...  A signal handled at any moment in
 * between -- after the attempt, before the fiber has published its wait
 * -- must end it as if the call were blocked in the kernel.  So the call
 * opens a window before its first attempt and closes it when it returns;
 * the signal wrapper marks the window (lock-free, in the handler), and the
 * next or current park of that call ends with FZ_WAKE_INTERRUPT.  Waits
 * outside such a call open a window for the park itself.
 * interruptible: FZ_INTR_NORESTART or FZ_INTR_ALWAYS.  Returns what
 * fz_call_end needs (nested calls leave the outer window alone). */
unsigned fz_call_begin(int interruptible);
/* Also runs the handlers of signals pending on the fiber (every call ends
 * through here, with a window or without). */
void fz_call_end(unsigned token);

/* The main fiber would take sig if it were sent to the process now:
 * natively the kernel offers a process-directed signal to the main thread
 * first, unless it blocks it or has exited (it almost never has one
 * pending already).  Lock-free, for handler context too. */
bool fz_main_takes(int sig);

/* From the signal wrapper, in handler context (no locks): a handler ran
 * (restart: it has SA_RESTART) for a process-directed signal; mark the
 * call of the fiber the kernel would have interrupted (the main fiber,
 * unless it blocks sig or has exited) if the handler ends it.  The
 * scheduler then calls fz_interrupt_one to wake the fiber if it is parked. */
void fz_interrupt_note(int sig, bool restart);
/* Same for one fiber (a thread-directed signal); true if marked. */
bool fz_interrupt_mark(struct fz_fiber *f, bool restart);
/* Scheduler side: f's call was marked: end its park if it is parked
 * (otherwise its next park ends at once). */
void fz_interrupt_marked(struct fz_fiber *f);
/* Scheduler side, per handler that ran: wake the interruptible waiter the
 * kernel would have interrupted (the main fiber's when it takes the
 * signal, see fz_interrupt_note, else the longest waiting). */
void fz_interrupt_one(int sig, bool restart);

/* From a signal handler (which may have interrupted the holder of a
 * runtime lock on this thread): wake one waiter on addr later, from a
 * carrier's scheduler.  False if too many wakes are pending already. */
bool fz_unpark_addr_deferred(const void *addr);
/* Scheduler side: run the deferred wakes. */
void fz_park_run_deferred(struct fz_carrier *c);
/* A program's signal handler is running on some thread. */
bool fz_in_signal_handler(void);

/* fork child: empty every queue. */
void fz_park_after_fork(void);

#endif
