/* Signal interruption: how a program's signal handler reaches the runtime.
 *
 * A fiber parked in a wait is not in the kernel, so a signal cannot end its
 * wait with EINTR there.  The handler wrapper (syscalls/signal.c) brackets
 * the program's handler with these calls; the scheduler, never the
 * handler (it may have interrupted the scheduler itself), later ends the
 * wait the kernel would have interrupted (park.h's fz_interrupt_one).
 * The counters behind them are fz_rt's; only these functions and the
 * scheduler touch them.  Both are async-signal-safe.
 */
#ifndef FZ_INTERRUPT_H
#define FZ_INTERRUPT_H

#include <stdbool.h>

/* The program's handler is about to run on this thread (see park.h's
 * fz_in_signal_handler, which this makes true meanwhile). */
void fz_signal_handler_enter(void);
/* It has returned, or a longjmp has left it. */
void fz_signal_handler_done(void);
/* A process-directed signal's handler ran (restart: it has SA_RESTART).
 * On a carrier, count an interrupt for sig and wake a carrier to act on
 * it.  On any other thread the kernel has interrupted that thread's own
 * wait, as natively: nothing to do. */
void fz_signal_handler_ran(int sig, bool restart);

#endif
