/* Signal dispositions: EINTR for parked fibers.
 *
 * A fiber parked in an interruptible wait is not in the kernel, so a signal
 * cannot interrupt it.  When the program installs a handler, we install a
 * wrapper instead: it runs the program's handler, then counts an interrupt
 * (noting SA_RESTART) and wakes the driver; the scheduler (never the
 * handler: it may have interrupted the scheduler itself) then makes the
 * wait the kernel would have interrupted return EINTR -- the main fiber's,
 * as natively a process-directed signal goes to the main thread -- if that
 * wait is one the handler's SA_RESTART does not restart (park.h's
 * fz_intr).  SIG_IGN and SIG_DFL are installed unchanged.  Queries always
 * show the program what it installed.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "runtime/driver.h"
#include "syscalls/hook.h"

static struct sigaction program_action[NSIG];
static volatile sig_atomic_t wrapped[NSIG];

static void on_signal(int sig, siginfo_t *info, void *uctx)
{
    const struct sigaction *a = &program_action[sig];
    if (a->sa_flags & SA_SIGINFO)
        a->sa_sigaction(sig, info, uctx);
    else
        a->sa_handler(sig);
    if (a->sa_flags & SA_RESTART)
        atomic_fetch_add(&fz_rt.pending_restarts, 1);
    atomic_fetch_add(&fz_rt.pending_interrupts, 1);
    fz_driver_wake();
}

static bool needs_wrapper(const struct sigaction *act)
{
    void (*h)(int) = act->sa_handler;
    return h != SIG_IGN && h != SIG_DFL;
}

FZ_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!fz_rt.active || sig <= 0 || sig >= NSIG)
        return fz_real.sigaction(sig, act, old);
    struct sigaction previous = program_action[sig], kernel_old;
    bool was_wrapped = wrapped[sig];
    int r;
    if (act && needs_wrapper(act)) {
        struct sigaction k = *act;
        k.sa_sigaction = on_signal;
        k.sa_flags |= SA_SIGINFO;
        program_action[sig] = *act;
        wrapped[sig] = 1;
        r = fz_real.sigaction(sig, &k, &kernel_old);
        if (r != 0) {
            program_action[sig] = previous;
            wrapped[sig] = was_wrapped;
        }
    } else {
        r = fz_real.sigaction(sig, act, &kernel_old);
        if (r == 0 && act)
            wrapped[sig] = 0;
    }
    if (r == 0 && old)
        *old = kernel_old.sa_sigaction == on_signal ? previous : kernel_old;
    return r;
}

/* glibc's signal() has BSD semantics (SA_RESTART); it goes through our
 * sigaction so the previous handler it returns is the program's. */
FZ_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    if (!fz_rt.active)
        return fz_real.signal(sig, handler);
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    if (sig > 0 && sig < NSIG)
        sigaddset(&act.sa_mask, sig);
    if (sigaction(sig, &act, &old) < 0)
        return SIG_ERR;
    return old.sa_handler;
}
