/* Signals sent to one thread (pthread_kill, pthread_sigqueue, tgkill):
 * kept pending on the fiber, run on the fiber (runtime/sigthread.c). */
#ifndef FZ_SIGTHREAD_H
#define FZ_SIGTHREAD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct fz_fiber;
struct fz_carrier;

/* Signal sig's bit (1..64) in a 64-bit mask, as the kernel's sigset_t. */
static inline uint64_t fz_sig_bit(int sig)
{
    return 1ull << (sig - 1);
}

/* What the program installed for each signal, as the runtime needs it to
 * decide whether a parked fiber's wait ends with EINTR: FZ_DISP_NONE (no
 * handler runs: default or ignore), else the handler's SA_RESTART.
 * Written by the sigaction interposer. */
enum { FZ_DISP_NONE = 0, FZ_DISP_HANDLER = 1, FZ_DISP_HANDLER_RESTART = 2 };
/* SIG_DFL, for a signal whose default ends the process, put in place of a
 * handler: the signal wrapper stays installed, takes the pending bit when
 * a doorbell comes, and applies the default itself -- so that a doorbell
 * rung for the old handler and still on its way is dropped, not met by
 * the kernel's default action. */
enum { FZ_DISP_DEFAULT_CAUGHT = 3 };
extern _Atomic unsigned char fz_sig_disposition[65];

/* The siginfo a sender means (NULL in fz_sigthread_send: pthread_kill's,
 * SI_TKILL from this process). */
struct fz_sigsend {
    int code;
    pid_t pid;
    uid_t uid;
    union sigval value;
};

/* Send sig (1..64) to fiber f: pending on f, then run on f as soon as f
 * does not block it.  Any caller but a signal handler that interrupted the
 * runtime (fibers, carriers' scheduler, other threads); from a fiber's own
 * handler it is fine.  A signal to oneself runs its handler before this
 * returns, as natively. */
void fz_sigthread_send(struct fz_fiber *f, int sig, const struct fz_sigsend *info);

/* self's own system call just raised sig (SIGPIPE for a write that found
 * no reader) while self blocks it: the kernel keeps it pending on the
 * carrier's OS thread, where the next fiber there that does not block it
 * would get it -- the default action, for SIGPIPE, ends the process.
 * Move it to self, pending there as natively on the writing thread. */
void fz_sigthread_adopt_own(struct fz_fiber *self, int sig);

/* f's pending signals that it does not block. */
uint64_t fz_sigthread_deliverable(struct fz_fiber *f);

/* On the running fiber (not in a handler that interrupted the runtime):
 * run the handlers of its deliverable pending signals now. */
void fz_sigthread_deliver_own(struct fz_fiber *self);
/* self just published an interruptible wait (park.c): a signal that
 * became pending while it ran inside the runtime, between its attempt and
 * this point, had its doorbell deferred; it ends the wait now, as it would
 * have ended the one blocking system call natively. */
void fz_sigthread_wait_published(struct fz_fiber *self);
/* Switch-in (sched.c), c->sched_busy just cleared. */
void fz_sigthread_resumed(struct fz_fiber *self);

/* ---- the signal wrapper's side (syscalls/signal.c) ---- */

/* True if this siginfo is a doorbell: *target is the fiber it is for. */
bool fz_sigthread_doorbell(int sig, const siginfo_t *info, struct fz_fiber **target);
/* The carrier whose OS thread calls this, or NULL. */
struct fz_carrier *fz_sigthread_carrier_here(void);
/* May the doorbell for target, landed on carrier c, run the handler now?
 * pc: where the interrupted code was. */
bool fz_sigthread_may_run(struct fz_carrier *c, struct fz_fiber *target, uintptr_t pc);
/* Take sig off f's pending set; fill *info with what the sender meant.
 * False if it was not pending (an extra doorbell: drop it). */
bool fz_sigthread_take(struct fz_fiber *f, int sig, siginfo_t *info);
/* After a handler ran on f (in the program's code, not the runtime's):
 * let other runnable fibers run first, as the kernel may reschedule when a
 * handler returns.  Without it a fiber woken from a stop-the-world (GC
 * suspend/resume) spins on while the others wait for a carrier. */
void fz_sigthread_after_handler(struct fz_fiber *f);
/* The handler's frame is about to return to the kernel, f's mask is back
 * to what it was: signals sent while the handler blocked them run after
 * the kernel's sigreturn (a doorbell to itself, blocked until then). */
void fz_sigthread_handler_done(struct fz_fiber *f);
/* From a signal handler: sig (with the kernel's info) is to run on f
 * instead of where it landed; rung by the scheduler or the monitor. */
void fz_sigthread_post_async(struct fz_fiber *f, int sig, const siginfo_t *info);
/* The doorbell came at a bad moment: ring again later (async-signal-safe). */
void fz_sigthread_defer(struct fz_fiber *f);
/* Scheduler and monitor: ring deferred doorbells.  c: the calling carrier
 * on its scheduler path, or NULL. */
void fz_sigthread_run_deferred(struct fz_carrier *c);
/* Where the runtime's code lies: a doorbell landing there waits. */
void fz_sigthread_set_runtime_text(uintptr_t start, uintptr_t end);

/* The program is about to take away the handler self runs sig under:
 * what was sent before runs that handler first, as natively it would
 * have.  Waits for signals on their way (the brackets below), takes the
 * process-directed instances the kernel still holds and the doorbells
 * queued to this OS thread, and runs self's deliverable ones.  On the
 * running fiber, outside any runtime lock. */
void fz_sigthread_settle(struct fz_fiber *self);
/* Bracket a signal on its way to a fiber: from the look at where the
 * fiber is to the doorbell's send, or from a process-directed signal's
 * landing to its post.  Begin ends with a full fence, so what the
 * caller reads next is ordered after its count.  Async-signal-safe; never
 * held across a wait. */
void fz_sigthread_flight_begin(void);
void fz_sigthread_flight_end(void);

/* fork child: no pending doorbells. */
void fz_sigthread_after_fork(void);

#endif
