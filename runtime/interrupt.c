/* See interrupt.h.  The counts are consumed by sched.c (handle_interrupts). */
#include <signal.h>
#include "runtime/assert.h"
#include "runtime/driver.h"
#include "runtime/interrupt.h"
#include "runtime/park.h"
#include "runtime/sched.h"

void fz_signal_handler_enter(void)
{
    atomic_fetch_add(&fz_rt.handlers_running, 1); /* see fz_unpark_addr_deferred */
}

void fz_signal_handler_done(void)
{
    atomic_fetch_sub(&fz_rt.handlers_running, 1);
}

void fz_signal_handler_ran(int sig, bool restart)
{
    FZ_ASSERT(sig > 0 && sig < NSIG);
    if (!fz_on_carrier())
        return;
    fz_interrupt_note(sig, restart); /* now: the call it lands in (park.h) */
    atomic_fetch_add(&fz_rt.pending_signal[restart][sig], 1);
    atomic_fetch_add(&fz_rt.pending_interrupts, 1);
    fz_driver_wake();
}
