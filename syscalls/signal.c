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
 * fz_intr).  SIG_IGN and SIG_DFL are installed unchanged, except SIG_DFL
 * in place of a handler for a signal that ends the process: a wrapper
 * stays (retire_to_default).  Queries always show the program what it
 * installed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <sys/signalfd.h>
#include "runtime/altstack.h"
#include "runtime/driver.h"
#include "runtime/identity.h"
#include "runtime/interrupt.h"
#include "runtime/park.h"
#include "runtime/ownfd.h"
#include "runtime/reactor.h"
#include "runtime/sigmask.h"
#include "runtime/sigthread.h"
#include "syscalls/hook.h"
#include "syscalls/ident.h"
#include "syscalls/jmpbuf.h"

static struct sigaction program_action[NSIG];
/* What the kernel has for each signal (written by sigaction only):
 * KERNEL_PROGRAMS: the program's own SIG_DFL or SIG_IGN;
 * KERNEL_WRAPPER: on_signal, around program_action's handler;
 * KERNEL_RETIRING: on_signal still, while sigaction takes that handler
 *   away (fz_sigthread_settle runs what was sent before);
 * KERNEL_DEFAULT_CAUGHT: on_default, for a SIG_DFL that ends the process
 *   put in place of a handler (fz_sig_disposition's FZ_DISP_DEFAULT_CAUGHT).
 * A signal that enters on_signal while the state is RETIRING or
 * DEFAULT_CAUGHT was taken by a thread under the old handler: natively it
 * runs that handler (retired_action), and so does it here. */
enum { KERNEL_PROGRAMS, KERNEL_WRAPPER, KERNEL_RETIRING, KERNEL_DEFAULT_CAUGHT };
static volatile sig_atomic_t wrapped[NSIG];
static struct sigaction retired_action[NSIG];

/* sig, pending for f, was sent under a handler about to be retired:
 * whoever takes it off f's pending set runs that handler (take_retired). */
static void mark_sent_retired(struct fz_fiber *f, int sig)
{
    atomic_fetch_or(&f->sig_retired, fz_sig_bit(sig));
}

/* Was sig, just taken off f's pending set, sent under the handler now
 * retired (f->sig_retired)?  Clears the mark either way. */
static bool take_retired(struct fz_fiber *f, int sig)
{
    uint64_t bit = fz_sig_bit(sig);
    return atomic_fetch_and(&f->sig_retired, ~bit) & bit;
}

/* The kernel's default for sig is to discard it. */
static bool default_ignores(int sig)
{
    return sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH;
}

/* The default action of sig (1..64) ends the process: not one it discards,
 * nor a stop, nor SIGKILL (which no handler ever replaces). */
static bool default_ends_process(int sig)
{
    if (default_ignores(sig))
        return false;
    switch (sig) {
    case SIGSTOP:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
    case SIGKILL:
        return false;
    default:
        return sig >= 1 && sig <= 64;
    }
}

/* sig is really pending for the fiber or thread the wrapper runs on and
 * meets the program's SIG_DFL: put the kernel's default back and let it
 * act, on this OS thread. */
static void die_by_default(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    fz_real.sigaction(sig, &dfl, NULL);
    wrapped[sig] = KERNEL_PROGRAMS;
    uint64_t only = fz_sig_bit(sig);
    fz_sys3(SYS_tgkill, fz_rt.pid, fz_sys0(SYS_gettid), sig);
    fz_sys4(SYS_rt_sigprocmask, SIG_UNBLOCK, &only, NULL, 8); /* acts here */
}

/* A signal the kernel took under an older wrapper can find SIG_IGN or
 * SIG_DFL in program_action: dropped, as it would be now, or the default
 * applied. */
static bool is_handler(const struct sigaction *a, int sig)
{
    if (a->sa_handler == SIG_IGN)
        return false;
    if (a->sa_handler != SIG_DFL)
        return true;
    if (default_ends_process(sig))
        die_by_default(sig);
    return false;
}

/* The action a signal taken off f's pending set runs.  Called in flight
 * (thread_directed): a state read as KERNEL_WRAPPER keeps program_action
 * the handler until the caller's copy is made.  While RETIRING,
 * program_action may become SIG_DFL at any moment, but retired_action
 * stays the handler this signal was sent under. */
static const struct sigaction *action_for_taken(struct fz_fiber *f, int sig)
{
    bool retired = take_retired(f, sig);
    int state = wrapped[sig];
    if (state == KERNEL_RETIRING || (state == KERNEL_DEFAULT_CAUGHT && retired))
        return &retired_action[sig];
    if (state != KERNEL_DEFAULT_CAUGHT)
        return &program_action[sig];
    die_by_default(sig);
    return &program_action[sig]; /* not reached: the default ended us */
}

/* The kernel's 64-bit mask inside a glibc sigset_t. */
static uint64_t kernel_bits(const sigset_t *set)
{
    uint64_t bits;
    memcpy(&bits, set, sizeof bits);
    return bits;
}

/* Handlers running on fiber f, innermost last, so that a longjmp out of
 * them (see siglongjmp below) can undo what their wrapper would have. */
static void handler_enter(struct fz_fiber *f)
{
    if (f) {
        /* The ring that brought this signal is over.  A doorbell that lands
         * in the runtime's code while the handler runs -- inside the park
         * of its sigsuspend, say -- must wait for a safe point like any
         * other: run there, it took its signal after the wait was set up,
         * and the fiber then parked for ever (found by reading the code
         * while chasing sig_stw's hangs on two carriers). */
        f->sig_raising = false;
        void *sp = __builtin_frame_address(0);
        if (f->handler_depth < FZ_HANDLER_DEPTH)
            f->handler_frames[f->handler_depth] =
                (struct fz_handler_frame){sp, fz_altstack_contains(f, sp)};
        f->handler_depth++;
    }
    fz_signal_handler_enter();
}

static void handler_leave(struct fz_fiber *f)
{
    if (f)
        f->handler_depth--;
    fz_signal_handler_done();
}

/* A signal sent to fiber f (a doorbell, runtime/sigthread.c) landed on this
 * OS thread.  If it runs f in the program's code, the handler runs now, on
 * f: the frame the kernel built is f's.  While it runs, f's mask is the
 * handler's (what the kernel loaded: the interrupted mask, sa_mask and the
 * signal), so a handler that parks takes it along to whichever carrier
 * resumes it, and the carrier's record of its kernel mask stays true; the
 * kernel's sigreturn then loads uc_sigmask on the carrier f is on by then. */
static void thread_directed(int sig, siginfo_t *info, ucontext_t *uc, struct fz_fiber *f)
{
    struct fz_carrier *c = fz_sigthread_carrier_here();
    if (!fz_sigthread_may_run(c, f, (uintptr_t)uc->uc_mcontext.gregs[REG_RIP])) {
        fz_sigthread_defer(f);
        /* A thread holds one pending instance of a standard signal: a
         * doorbell for the fiber running here now, rung while this one
         * waited blocked in the kernel, merged into it and is gone.  That
         * fiber may compute without ever looking at its signals again:
         * ring it again too (the deferred ring checks it has some). */
        if (c && c->current && c->current != f)
            fz_sigthread_defer(c->current);
        return;
    }
    /* In flight from the take to the copy: retire_to_default either waits
     * for the copy or is seen RETIRING by action_for_taken (the wrapper's
     * protocol, below). */
    fz_sigthread_flight_begin();
    if (!fz_sigthread_take(f, sig, info)) {
        fz_sigthread_flight_end();
        return; /* rung twice, or for a handler taken away since: run */
    }
    const struct sigaction taken = *action_for_taken(f, sig), *a = &taken;
    fz_sigthread_flight_end();
    if (!is_handler(a, sig))
        return;
    uint64_t entry = kernel_bits(&uc->uc_sigmask), before = f->sigmask;
    uint64_t during = entry | kernel_bits(&a->sa_mask);
    if (!(a->sa_flags & SA_NODEFER))
        during |= fz_sig_bit(sig);
    f->sigmask = during;
    c->kernel_mask = during;
    f->handled++;
    handler_enter(f);
    if (a->sa_flags & SA_SIGINFO)
        a->sa_sigaction(sig, info, uc);
    else
        a->sa_handler(sig);
    handler_leave(f);
    /* It ran on f inside libc (a call's attempt, say) or in the program's
     * code: a call f is making ends with EINTR where the one system call
     * would have, even though f parks only after this returns. */
    fz_interrupt_mark(f, a->sa_flags & SA_RESTART);
    fz_sigthread_after_handler(f); /* still on the handler's mask */
    f->sigmask = before;
    f->carrier->kernel_mask = entry; /* f may have moved while it waited */
    fz_sigthread_handler_done(f);
}

/* A signal the wrapper took becomes target's, to run at a safe point;
 * one taken under a handler since retired is marked so first, so that
 * whoever takes it off target's pending set runs that handler. */
static void post_taken(struct fz_fiber *target, int sig, const siginfo_t *info, bool retired)
{
    if (retired)
        mark_sent_retired(target, sig);
    fz_sigthread_post_async(target, sig, info);
}

static bool accepts(struct fz_fiber *f, void *sig)
{
    return f->state != FZ_FIBER_DONE && !(f->sigmask & fz_sig_bit(*(int *)sig));
}

/* A process-directed signal that lands on a carrier in scheduler code (its
 * idle context, a switch) or on a fiber inside the runtime must not run
 * there: a handler that longjmps would leave the scheduler's stack or a
 * runtime lock behind, and on the idle context it runs on no thread at all.
 * It becomes a signal sent to the thread the kernel would pick -- main,
 * else one that does not block it -- and runs there, at a safe point. */
static bool redirect_process_signal(int sig, siginfo_t *info, ucontext_t *uc,
                                    struct fz_fiber **runs_on, bool retired)
{
    struct fz_carrier *c = fz_sigthread_carrier_here();
    *runs_on = NULL;
    if (!c || sig > 64)
        return false; /* not a carrier: it interrupted that thread's own call */
    struct fz_fiber *cur = c->current;
    if (cur && fz_sigthread_may_run(c, cur, (uintptr_t)uc->uc_mcontext.gregs[REG_RIP])) {
        *runs_on = cur;
        return false;
    }
    struct fz_fiber *m = fz_rt.main_fiber, *target = NULL;
    if (!atomic_load(&fz_rt.main_exited) && accepts(m, &sig))
        target = m;
    else if (cur && accepts(cur, &sig))
        target = cur;
    else
        target = fz_ident_any(accepts, &sig);
    if (!target)
        target = m; /* every thread blocks it now: pending on main */
    post_taken(target, sig, info, retired);
    return true;
}

/* SIGPIPE and SIGXFSZ sent by the process itself (SI_USER, its own pid)
 * are what the kernel sends the thread whose write found no reader or
 * passed the file size limit: thread-directed, and handled before that
 * write returns.  One that lands while a fiber runs the runtime's code --
 * the write an interposer made as a raw system call -- is that fiber's:
 * it stays pending on it and the call runs it on its way out
 * (fz_call_end), where a process-directed signal would go to the main
 * fiber later (redirect_process_signal).  A kill(getpid(), SIGPIPE) that
 * lands there goes to that fiber too: the kernel may pick any thread for
 * it. */
static bool own_call_signal(int sig, const siginfo_t *info, const ucontext_t *uc, bool retired)
{
    if ((sig != SIGPIPE && sig != SIGXFSZ) || !info || info->si_code != SI_USER ||
        info->si_pid != fz_rt.pid)
        return false;
    struct fz_carrier *c = fz_sigthread_carrier_here();
    struct fz_fiber *cur = c ? c->current : NULL;
    if (!cur || c->sched_busy ||
        fz_sigthread_may_run(c, cur, (uintptr_t)uc->uc_mcontext.gregs[REG_RIP]))
        return false;
    post_taken(cur, sig, info, retired);
    return true;
}

/* A signal the kernel took under the wrapper: entered through on_signal
 * (the handler's) or on_default (the SIG_DFL kept caught). */
static void wrapper(int sig, siginfo_t *info, void *uctx, bool under_handler)
{
    struct fz_fiber *target;
    if (fz_sigthread_doorbell(sig, info, &target)) {
        thread_directed(sig, info, uctx, target);
        return;
    }
    /* On its way until posted or run here; counted before the look at
     * the state, which retire_to_default changes before it waits for none
     * on their way: one of the two sees the other. */
    fz_sigthread_flight_begin();
    bool retired = under_handler && wrapped[sig] >= KERNEL_RETIRING;
    /* The default, where the kernel's own would have acted: never posted
     * (a fault in the runtime's code would come back for ever). */
    if (!retired && wrapped[sig] == KERNEL_DEFAULT_CAUGHT) {
        fz_sigthread_flight_end();
        die_by_default(sig);
    }
    bool posted = own_call_signal(sig, info, uctx, retired);
    struct fz_fiber *f = NULL;
    if (!posted)
        posted = redirect_process_signal(sig, info, uctx, &f, retired);
    /* The action to run, copied while still in flight: retire_to_default
     * replaces program_action only once no signal is, so a copy made after
     * flight_end could be the SIG_DFL that replaced the handler this signal
     * came under (sig_dfl race on two carriers, with the copy after it:
     * 1-3 runs in 100 died under load, 9 in 40 with a 200 us nap put
     * between the two). */
    struct sigaction now = retired ? retired_action[sig] : program_action[sig];
    fz_sigthread_flight_end();
    if (posted)
        return;
    const struct sigaction *a = &now;
    if (!is_handler(a, sig))
        return;
    bool restart = a->sa_flags & SA_RESTART; /* of the handler that runs now */
    handler_enter(f);
    if (a->sa_flags & SA_SIGINFO)
        a->sa_sigaction(sig, info, uctx);
    else
        a->sa_handler(sig);
    handler_leave(f);
    fz_signal_handler_ran(sig, restart);
}

static void on_signal(int sig, siginfo_t *info, void *uctx)
{
    wrapper(sig, info, uctx, true);
}

static void on_default(int sig, siginfo_t *info, void *uctx)
{
    wrapper(sig, info, uctx, false);
}

static bool needs_wrapper(const struct sigaction *act)
{
    void (*h)(int) = act->sa_handler;
    return h != SIG_IGN && h != SIG_DFL;
}

static void note_disposition(int sig, const struct sigaction *act)
{
    if (sig > 64)
        return;
    unsigned char d = wrapped[sig] == KERNEL_DEFAULT_CAUGHT ? FZ_DISP_DEFAULT_CAUGHT
                      : !needs_wrapper(act)                 ? FZ_DISP_NONE
                      : (act->sa_flags & SA_RESTART)        ? FZ_DISP_HANDLER_RESTART
                                                            : FZ_DISP_HANDLER;
    atomic_store(&fz_sig_disposition[sig], d);
}

bool fz_signal_discarded(int sig)
{
    struct sigaction now;
    if (wrapped[sig])
        return false;
    if (fz_real.sigaction(sig, NULL, &now) != 0)
        return false;
    if (now.sa_handler == SIG_IGN)
        return true;
    return now.sa_handler == SIG_DFL && default_ignores(sig);
}

/* A doorbell that lands while the fiber runs the runtime's own code waits
 * (it might hold a runtime lock the handler needs): find that code. */
static int find_own_text(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t self = (uintptr_t)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && self >= start &&
            self < start + ph->p_memsz) {
            fz_sigthread_set_runtime_text(start, start + ph->p_memsz);
            return 1;
        }
    }
    return 0;
}

static void learn_own_text(void)
{
    static atomic_int done;
    if (!atomic_exchange(&done, 1))
        dl_iterate_phdr(find_own_text, (void *)(uintptr_t)on_signal);
}

/* The program's act, with the wrapper in the kernel (state: which one);
 * put back as it was if the kernel refuses. */
static int install_wrapper(int sig, const struct sigaction *act, int state, int was,
                           struct sigaction *kernel_old)
{
    struct sigaction previous = program_action[sig], k = *act;
    k.sa_sigaction = state == KERNEL_DEFAULT_CAUGHT ? on_default : on_signal;
    k.sa_flags |= SA_SIGINFO;
    program_action[sig] = *act;
    wrapped[sig] = state;
    int r = fz_real.sigaction(sig, &k, kernel_old);
    if (r != 0) {
        program_action[sig] = previous;
        wrapped[sig] = was;
    }
    return r;
}

static void mark_retired(struct fz_fiber *f, void *arg)
{
    int sig = *(int *)arg;
    if (f->state != FZ_FIBER_DONE && (fz_sigthread_deliverable(f) & fz_sig_bit(sig)))
        mark_sent_retired(f, sig);
}

/* SIG_DFL in place of a handler, for a signal whose default ends the
 * process.  What was sent before runs the old handler first, as natively
 * (settle).  The kernel keeps a wrapper, on_default: a doorbell rung for
 * the old handler may still be on its way to any carrier, and met by the
 * kernel's SIG_DFL it would end the process for a signal already handled
 * -- sig_dfl_race, a 100 us timer stopped before signal(SIGALRM,
 * SIG_DFL), died in 20 runs of 20 on two carriers without this. */
static int retire_to_default(int sig, const struct sigaction *act, struct sigaction *kernel_old)
{
    int was = wrapped[sig];
    if (was == KERNEL_WRAPPER) {
        retired_action[sig] = program_action[sig];
        wrapped[sig] = KERNEL_RETIRING;
        atomic_thread_fence(memory_order_seq_cst); /* before settle's look */
        struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
        if (self)
            fz_sigthread_settle(self);
        /* Still pending and let in: on self, a doorbell held back (merged
         * into another fiber's, say); on another fiber, one the kernel
         * would have run there already (main blocked it, in its own
         * handler).  When they come they run the handler they were sent
         * under. */
        fz_ident_each(mark_retired, &sig);
    }
    return install_wrapper(sig, act, KERNEL_DEFAULT_CAUGHT, was, kernel_old);
}

FZ_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    /* a vfork child resetting its handlers must not change the parent's table */
    if (!fz_rt.active || sig <= 0 || sig >= NSIG || (act && fz_in_vfork_child()))
        return fz_real.sigaction(sig, act, old);
    struct sigaction previous = program_action[sig], kernel_old;
    int was_wrapped = wrapped[sig];
    int r;
    if (act && needs_wrapper(act)) {
        learn_own_text();
        r = install_wrapper(sig, act, KERNEL_WRAPPER, was_wrapped, &kernel_old);
    } else if (act && act->sa_handler == SIG_DFL && was_wrapped && default_ends_process(sig)) {
        r = retire_to_default(sig, act, &kernel_old);
    } else {
        r = fz_real.sigaction(sig, act, &kernel_old);
        if (r == 0 && act)
            wrapped[sig] = KERNEL_PROGRAMS;
    }
    if (r == 0 && act)
        note_disposition(sig, act);
    if (r == 0 && old)
        *old = kernel_old.sa_sigaction == on_signal || kernel_old.sa_sigaction == on_default
                   ? previous
                   : kernel_old;
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

/* ---- leaving a handler by longjmp ------------------------------------- */

static bool jumps_over(struct fz_fiber *f, const struct fz_handler_frame *h, uintptr_t target)
{
    bool target_alt = fz_altstack_contains(f, (void *)target);
    if (h->on_altstack != target_alt)
        return h->on_altstack; /* leaving the alternate stack, or going onto it */
    return (uintptr_t)h->sp < target;
}

/* A longjmp leaves handlers whose wrappers will never return: the fiber's
 * handler records, the global count and its mask are brought to where the
 * jump lands (glibc restores a saved mask with an internal rt_sigprocmask
 * that the mask interposers never see). */
static void before_longjmp(struct __jmp_buf_tag *env)
{
    struct fz_fiber *self = fz_self();
    if (!self || !self->handler_depth)
        return;
    uintptr_t target = fz_jmpbuf_sp(env);
    unsigned left = 0;
    while (self->handler_depth &&
           (self->handler_depth > FZ_HANDLER_DEPTH ||
            jumps_over(self, &self->handler_frames[self->handler_depth - 1], target))) {
        handler_leave(self);
        left++;
    }
    if (!left)
        return;
    uint64_t mask = self->sigmask; /* the handler's, unless the jump restores one */
    fz_jmpbuf_saved_mask(env, &mask);
    fz_sigmask_change(self, mask);
}

FZ_EXPORT __attribute__((noreturn)) void siglongjmp(struct __jmp_buf_tag env[1], int val)
{
    before_longjmp(env);
    fz_real.siglongjmp(env, val);
    __builtin_unreachable();
}

FZ_EXPORT __attribute__((noreturn)) void longjmp(struct __jmp_buf_tag env[1], int val)
{
    before_longjmp(env);
    fz_real.longjmp(env, val);
    __builtin_unreachable();
}

FZ_EXPORT __attribute__((noreturn)) void _longjmp(struct __jmp_buf_tag env[1], int val)
{
    before_longjmp(env);
    fz_real._longjmp(env, val);
    __builtin_unreachable();
}

FZ_EXPORT __attribute__((noreturn)) void __longjmp_chk(struct __jmp_buf_tag *env, int val)
{
    before_longjmp(env);
    fz_real.__longjmp_chk(env, val);
    __builtin_unreachable();
}

/* ---- masks and waiting for signals ------------------------------------ */

static uint64_t bits_of(const sigset_t *set)
{
    uint64_t bits = 0;
    for (int sig = 1; sig <= 64; sig++)
        if (sigismember(set, sig) == 1)
            bits |= fz_sig_bit(sig);
    return bits;
}

static void set_of(uint64_t bits, sigset_t *set)
{
    sigemptyset(set);
    for (int sig = 1; sig <= 64; sig++)
        if (bits & fz_sig_bit(sig))
            sigaddset(set, sig);
}

/* A fiber's mask lives in the runtime (runtime/sigmask.h); the kernel mask
 * of its carrier holds only what every fiber blocks. */
FZ_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    if (!self || (set && fz_in_vfork_child()))
        return fz_real.pthread_sigmask(how, set, old);
    uint64_t mask = fz_sigmask_of(self);
    if (set) {
        uint64_t bits = bits_of(set);
        if (how == SIG_BLOCK)
            mask |= bits;
        else if (how == SIG_UNBLOCK)
            mask &= ~bits;
        else if (how == SIG_SETMASK)
            mask = bits;
        else
            return EINVAL;
    }
    if (old)
        set_of(fz_sigmask_of(self), old);
    if (set)
        fz_sigmask_change(self, mask);
    return 0;
}

FZ_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    if (!fz_hook_self(FZ_HOOK_THREAD))
        return fz_real.sigprocmask(how, set, old);
    int err = pthread_sigmask(how, set, old);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* sigsuspend and pause end when a handler runs for this fiber: they park
 * until the signal path interrupts them (always EINTR, never restarted). */
FZ_EXPORT int sigsuspend(const sigset_t *mask)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    if (!self)
        return fz_real.sigsuspend(mask);
    uint64_t saved = fz_sigmask_of(self);
    unsigned handled = self->handled;
    fz_sigmask_change(self, bits_of(mask)); /* runs what it unblocks */
    while (self->handled == handled &&
           fz_sleep_until(UINT64_MAX, FZ_INTR_ALWAYS) != FZ_WAKE_INTERRUPT)
        ;
    fz_cancel_point();
    fz_sigmask_change(self, saved);
    errno = EINTR;
    return -1;
}

/* The carrier has the fiber's alternate stack loaded (runtime/altstack.c),
 * so the kernel checks the request and answers for the fiber. */
FZ_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    /* A query changes nothing the records keep: no signal to hold off. */
    if (!self || fz_in_vfork_child() || !ss)
        return fz_real.sigaltstack(ss, old);
    /* Blocked and restored through libc: a signal that came meanwhile
     * runs its handler when the mask comes back, in libc, as it would
     * natively, rather than being deferred as one landing inside the
     * runtime is. */
    sigset_t all, before;
    sigfillset(&all);
    fz_real.sigprocmask(SIG_SETMASK, &all, &before);
    int r = fz_altstack_set(self, ss, old);
    fz_real.sigprocmask(SIG_SETMASK, &before, NULL);
    return (int)fz_sys_result(r); /* r: 0 or -errno */
}

/* Pending for this thread: the process's, and what was sent to this fiber. */
FZ_EXPORT int sigpending(sigset_t *set)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    int r = fz_real.sigpending(set);
    if (r != 0 || !self)
        return r;
    uint64_t mine = atomic_load(&self->sig_pending);
    for (int sig = 1; sig <= 64; sig++)
        if (mine & fz_sig_bit(sig))
            sigaddset(set, sig);
    return 0;
}

FZ_EXPORT int pause(void)
{
    if (!fz_hook_self(FZ_HOOK_THREAD))
        return fz_real.pause();
    while (fz_sleep_until(UINT64_MAX, FZ_INTR_ALWAYS) != FZ_WAKE_INTERRUPT)
        ;
    fz_cancel_point();
    errno = EINTR;
    return -1;
}

/* No signalfd to park on (out of fds): the real call, blocking the
 * carrier, with what is left of the deadline (0: none). */
static int wait_for_signal_blocking(const sigset_t *set, siginfo_t *info, uint64_t deadline)
{
    if (!deadline)
        return fz_real.sigtimedwait(set, info, NULL);
    uint64_t now = fz_now_ns();
    struct timespec left = fz_ns_to_ts(deadline > now ? deadline - now : 0);
    return fz_real.sigtimedwait(set, info, &left);
}

/* One of `set` sent to this fiber, taken. */
static int take_own(struct fz_fiber *self, const sigset_t *set, siginfo_t *info)
{
    uint64_t mine = atomic_load(&self->sig_pending) & kernel_bits(set);
    siginfo_t scratch;
    while (mine) {
        int sig = __builtin_ctzll(mine) + 1;
        if (fz_sigthread_take(self, sig, info ? info : &scratch))
            return sig;
        mine &= mine - 1;
    }
    return 0;
}

/* Wait for one of `set` to be pending: take it if it is, else park on a
 * signalfd for the set (readable while one is pending process-wide) and
 * try again.  Returns the signal, or -1 with EAGAIN (timeout) or EINTR.
 * The signalfd is the runtime's own (runtime/ownfd.h); its number is read
 * again after every wake, as a dup2 onto it moves it.  Signals sent to this
 * fiber (sigthread.c) are taken first, as the kernel takes a thread's own
 * pending signals before the process's, and wake the wait (sigwait_set). */
static int wait_for_signal(struct fz_fiber *self, const sigset_t *set, siginfo_t *info,
                           uint64_t deadline)
{
    static const struct timespec zero = {0, 0};
    int sig = take_own(self, set, info);
    if (sig)
        return sig;
    sig = fz_real.sigtimedwait(set, info, &zero);
    if (sig > 0 || errno != EAGAIN || deadline == 1)
        return sig;
    int sfd = (int)fz_sys4(SYS_signalfd4, -1, (long)set, 8, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0 || !fz_ownfd_adopt(&sfd, false))
        return wait_for_signal_blocking(set, info, deadline);
    atomic_store(&self->sigwait_set, kernel_bits(set));
    for (;;) {
        struct fz_fd *s = fz_fd_get(__atomic_load_n(&sfd, __ATOMIC_ACQUIRE));
        if (!s || fz_fd_kind(s) != FZ_FD_POLLABLE) {
            atomic_store(&self->sigwait_set, 0);
            fz_ownfd_release(&sfd);
            return wait_for_signal_blocking(set, info, deadline);
        }
        struct fz_fd_watch w;
        fz_fd_watch_prepare(&w, s, true, false);
        if ((sig = take_own(self, set, info)))
            break;
        sig = fz_real.sigtimedwait(set, info, &zero);
        if (sig > 0 || errno != EAGAIN)
            break;
        int r = fz_fd_watch_wait(&w, 1, deadline, FZ_INTR_ALWAYS);
        if (r == EINTR) {
            fz_cancel_point();
            if ((sig = take_own(self, set, info)))
                break;
        }
        if (r) {
            errno = r == ETIMEDOUT ? EAGAIN : EINTR;
            sig = -1;
            break;
        }
    }
    atomic_store(&self->sigwait_set, 0);
    fz_fd_forget(sfd);
    fz_ownfd_release(&sfd);
    return sig;
}

FZ_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *ts)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    if (!self)
        return fz_real.sigtimedwait(set, info, ts);
    if (ts && (!fz_timespec_valid(ts) || ts->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    uint64_t deadline = 0;
    if (ts)
        deadline = ts->tv_sec == 0 && ts->tv_nsec == 0 ? 1 : fz_rel_to_deadline(ts);
    int saved_errno = errno;
    int sig = wait_for_signal(self, set, info, deadline);
    if (sig > 0)
        errno = saved_errno;
    return sig;
}

FZ_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
    return sigtimedwait(set, info, NULL);
}

FZ_EXPORT int sigwait(const sigset_t *set, int *sig)
{
    if (!fz_hook_self(FZ_HOOK_THREAD))
        return fz_real.sigwait(set, sig);
    int saved_errno = errno, r;
    do
        r = sigtimedwait(set, NULL, NULL);
    while (r < 0 && errno == EINTR); /* sigwait does not fail with EINTR */
    int err = r < 0 ? errno : 0;
    errno = saved_errno;
    if (r > 0)
        *sig = r;
    return err;
}

/* kill(getpid(), sig) from a fiber.  The kernel offers a process-directed
 * signal to the main thread first: when main takes it and the caller is
 * another fiber, it becomes a signal for the main fiber (SI_USER, from
 * us), run there and ending main's wait as the kernel's would -- the main
 * thread's OS thread is carrier 0, which may be running anyone.  From the
 * thread the kernel would pick itself (main, or, when main blocks it, a
 * thread that does not), the handler has run when kill returns natively,
 * and programs count on that: the fiber sends it to its own OS thread. */
FZ_EXPORT int kill(pid_t pid, int sig)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    if (!self || sig <= 0 || sig > 64 || (fz_sigmask_of(self) & fz_sig_bit(sig)) ||
        pid != (pid_t)fz_sys0(SYS_getpid))
        return fz_real.kill(pid, sig);
    if (self != fz_rt.main_fiber && fz_main_takes(sig)) {
        /* no handler: the default action or SIG_IGN is the whole process's */
        unsigned char d = atomic_load(&fz_sig_disposition[sig]);
        if (d == FZ_DISP_NONE || d == FZ_DISP_DEFAULT_CAUGHT)
            return fz_real.kill(pid, sig);
        struct fz_sigsend from = {SI_USER, pid, (uid_t)fz_sys0(SYS_getuid), {0}};
        /* main may be between a call's attempt and its park: mark that
         * call first, as the kernel's signal would end it (park.h) */
        bool restart = atomic_load(&fz_sig_disposition[sig]) == FZ_DISP_HANDLER_RESTART;
        fz_interrupt_mark(fz_rt.main_fiber, restart);
        fz_sigthread_send(fz_rt.main_fiber, sig, &from);
        return 0;
    }
    bool was_raising = self->sig_raising; /* its handler runs right here */
    self->sig_raising = true;
    long r = fz_sys3(SYS_tgkill, pid, fz_sys0(SYS_gettid), sig);
    self->sig_raising = was_raising;
    return (int)fz_sys_result(r); /* r: 0 or -errno */
}
