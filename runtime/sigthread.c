/* Signals sent to one thread: pthread_kill, pthread_sigqueue, tgkill.
 *
 * The kernel knows carriers, not fibers, so a signal for a fiber stays
 * pending on the fiber (`sig_pending`, and a slot for its siginfo when it
 * is not pthread_kill's), and the kernel is used only to run the handler at
 * the right moment, on the right stack: a *doorbell* is the same signal
 * number sent with rt_tgsigqueueinfo to the carrier that runs the fiber,
 * tagged with the fiber (an SI_QUEUE siginfo with a magic uid and a magic
 * word beyond the fields programs read).  The kernel builds the frame -- on
 * the fiber's stack or its sigaltstack, with the handler's sa_mask -- and
 * the program's handler runs under the fiber's TCB.  The signal wrapper
 * (syscalls/signal.c) checks that the carrier still runs that fiber in the
 * program's code (not in scheduler code, not inside the runtime, where the
 * handler could deadlock on a runtime lock the fiber holds), takes the
 * pending signal, writes the siginfo the sender meant into the frame and
 * runs the handler.  A doorbell that comes at a bad moment is deferred (the
 * scheduler or the monitor rings again); one that finds nothing pending
 * is dropped.  The pending bit is the one truth: whoever clears it runs
 * the handler, once.
 *
 * Ringing: the sender sets the bit, then looks where the fiber is (a full
 * fence on both sides: the fiber, switched in, clears its carrier's
 * sched_busy and then looks at its bits).  Running: doorbell to its
 * carrier.  Parked: its wait ends (park.c's fz_wait_signal) and, once the
 * waiter is withdrawn from every source, the fiber rings its own carrier
 * (fz_wait_over), then fails with EINTR where signal(7) says the call
 * does, or waits again.  Runnable: nothing; at switch-in the fiber rings
 * its own carrier, and the kernel delivers before that system call
 * returns.  A fiber also rings itself when it unblocks a pending signal
 * and when a handler that blocked it returns.  A process-directed signal
 * that lands in scheduler code or inside the runtime is posted here to the
 * thread the kernel would have picked (syscalls/signal.c).
 *
 * Standard signals pending on a fiber merge, as natively; realtime ones
 * queue up to FZ_SIGSLOTS with their values.
 */
#include <errno.h>
#include <string.h>
#include "runtime/driver.h"
#include "runtime/fiber.h"
#include "runtime/park.h"
#include "runtime/sched.h"
#include "runtime/sigthread.h"
#include "runtime/sys.h"

#define DOORBELL_UID 0xf1be7a11u
#define DOORBELL_MAGIC 0x6669626572697a65ull
#define DOORBELL_WORD 32 /* byte offset in siginfo_t: past every SI_QUEUE field */
#define DEFERRED_SLOTS 256

_Atomic unsigned char fz_sig_disposition[65];

static uintptr_t text_start, text_end;
/* Signals on their way to a fiber (fz_sigthread_flight_begin): settle
 * waits until there are none. */
static atomic_uint in_flight;
static struct fz_fiber *_Atomic deferred[DEFERRED_SLOTS];
static atomic_uint deferred_count;

uint64_t fz_sigthread_deliverable(struct fz_fiber *f)
{
    return atomic_load(&f->sig_pending) & ~f->sigmask;
}

void fz_sigthread_set_runtime_text(uintptr_t start, uintptr_t end)
{
    text_start = start;
    text_end = end;
}

static void ring(pid_t carrier_tid, int sig, struct fz_fiber *target)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = fz_rt.pid;
    si.si_uid = DOORBELL_UID;
    si.si_value.sival_ptr = target;
    uint64_t word = DOORBELL_MAGIC ^ (uintptr_t)target;
    memcpy((char *)&si + DOORBELL_WORD, &word, sizeof word);
    fz_sys4(SYS_rt_tgsigqueueinfo, fz_rt.pid, carrier_tid, sig, &si);
}

bool fz_sigthread_doorbell(int sig, const siginfo_t *info, struct fz_fiber **target)
{
    (void)sig;
    if (!info || info->si_code != SI_QUEUE || info->si_uid != DOORBELL_UID ||
        info->si_pid != fz_rt.pid)
        return false;
    uint64_t word;
    memcpy(&word, (const char *)info + DOORBELL_WORD, sizeof word);
    if (word != (DOORBELL_MAGIC ^ (uintptr_t)info->si_value.sival_ptr))
        return false;
    *target = info->si_value.sival_ptr;
    return true;
}

struct fz_carrier *fz_sigthread_carrier_here(void)
{
    pid_t tid = (pid_t)fz_sys0(SYS_gettid);
    unsigned n = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (fz_rt.carriers[i].tid == tid)
            return &fz_rt.carriers[i];
    return NULL;
}

bool fz_sigthread_may_run(struct fz_carrier *c, struct fz_fiber *target, uintptr_t pc)
{
    if (!c || c->current != target || c->sched_busy || c->reading_clock)
        return false;
    if (target->sig_raising)
        return true; /* it rang itself from a safe point */
    return !(pc >= text_start && pc < text_end);
}

/* Take a queued siginfo for sig, if any; true if another one for sig
 * remains queued. */
static bool take_slot(struct fz_fiber *f, int sig, siginfo_t *info)
{
    bool taken = false, more = false;
    for (int i = 0; i < FZ_SIGSLOTS; i++) {
        struct fz_sigslot *s = &f->sig_slots[i];
        if (atomic_load(&s->state) != 2 || s->sig != sig)
            continue;
        if (taken) {
            more = true;
            break;
        }
        int expected = 2;
        if (!atomic_compare_exchange_strong(&s->state, &expected, 1))
            continue;
        info->si_code = s->code;
        info->si_pid = s->pid;
        info->si_uid = s->uid;
        info->si_value = s->value;
        atomic_store(&s->state, 0);
        taken = true;
    }
    return more;
}

bool fz_sigthread_take(struct fz_fiber *f, int sig, siginfo_t *info)
{
    uint64_t bit = fz_sig_bit(sig);
    if (!(atomic_fetch_and(&f->sig_pending, ~bit) & bit))
        return false;
    memset(info, 0, sizeof *info);
    info->si_signo = sig;
    info->si_code = SI_TKILL;
    info->si_pid = fz_rt.pid;
    info->si_uid = (uid_t)fz_sys0(SYS_getuid);
    if (take_slot(f, sig, info))
        atomic_fetch_or(&f->sig_pending, bit); /* the next one queued */
    return true;
}

/* ---- sending ---------------------------------------------------------- */

static void post(struct fz_fiber *f, int sig, const struct fz_sigsend *info)
{
    uint64_t bit = fz_sig_bit(sig);
    bool realtime = sig >= SIGRTMIN;
    if (info && (realtime || !(atomic_load(&f->sig_pending) & bit))) {
        for (int i = 0; i < FZ_SIGSLOTS; i++) {
            struct fz_sigslot *s = &f->sig_slots[i];
            int expected = 0;
            if (!atomic_compare_exchange_strong(&s->state, &expected, 1))
                continue;
            s->sig = sig;
            s->code = info->code;
            s->pid = info->pid;
            s->uid = info->uid;
            s->value = info->value;
            atomic_store(&s->state, 2);
            break;
        }
    }
    atomic_fetch_or(&f->sig_pending, bit);
}

static int restart_of(int sig)
{
    unsigned d = atomic_load_explicit(&fz_sig_disposition[sig], memory_order_relaxed);
    return d == FZ_DISP_NONE || d == FZ_DISP_DEFAULT_CAUGHT ? -1 : d == FZ_DISP_HANDLER_RESTART;
}

/* Does the signal wrapper take sig's pending bit when its doorbell comes? */
static bool wrapper_takes(int sig)
{
    return atomic_load_explicit(&fz_sig_disposition[sig], memory_order_relaxed) != FZ_DISP_NONE;
}

/* f has sig pending and does not block it: make it run the handler. */
static void ring_fiber(struct fz_fiber *f, int sig)
{
    fz_sigthread_flight_begin();
    int state = __atomic_load_n(&f->state, __ATOMIC_RELAXED);
    if (state == FZ_FIBER_RUNNING) {
        struct fz_carrier *c = __atomic_load_n(&f->carrier, __ATOMIC_RELAXED);
        if (c && __atomic_load_n(&c->current, __ATOMIC_RELAXED) == f)
            ring(c->tid, sig, f);
        else
            /* Not current where it ran: being switched in (it looks at its
             * signals itself), or out -- into a park that began after it
             * looked and after the load of its state above.  Look again
             * once that is over (one of sig_stw's hangs: a parked fiber
             * kept its resume signal pending for ever). */
            fz_sigthread_defer(f);
    } else if (state == FZ_FIBER_PARKED) {
        fz_wait_signal(f, restart_of(sig));
    }
    fz_sigthread_flight_end();
}

void fz_sigthread_send(struct fz_fiber *f, int sig, const struct fz_sigsend *info)
{
    post(f, sig, info);
    if (f->sigmask & fz_sig_bit(sig)) {
        /* stays pending until f unblocks it or its sigwait takes it */
        if (atomic_load(&f->sigwait_set) & fz_sig_bit(sig))
            fz_wait_signal(f, 2);
        return;
    }
    struct fz_fiber *self = fz_self();
    if (f == self)
        fz_sigthread_deliver_own(self);
    else
        ring_fiber(f, sig);
}

static struct fz_sigsend sigsend_of(const siginfo_t *si)
{
    return (struct fz_sigsend){si->si_code, si->si_pid, si->si_uid, si->si_value};
}

enum adopted { ADOPTED_NONE, ADOPTED_SIGNAL, ADOPTED_DOORBELL };

/* Take, without waiting, one signal of `set` the kernel holds for this OS
 * thread (its own queue first) or for the process, and make it self's: a
 * doorbell goes back to the fiber it was rung for. */
static enum adopted adopt_one(struct fz_fiber *self, uint64_t set)
{
    struct timespec now = {0, 0};
    siginfo_t si;
    long sig = fz_sys4(SYS_rt_sigtimedwait, &set, &si, &now, 8);
    if (sig <= 0)
        return ADOPTED_NONE;
    struct fz_fiber *target;
    if (fz_sigthread_doorbell((int)sig, &si, &target)) {
        fz_sigthread_defer(target); /* held back: it runs from the deferred list */
        return ADOPTED_DOORBELL;
    }
    struct fz_sigsend info = sigsend_of(&si);
    post(self, (int)sig, &info);
    return ADOPTED_SIGNAL;
}

void fz_sigthread_adopt_own(struct fz_fiber *self, int sig)
{
    if (!(self->sigmask & fz_sig_bit(sig)))
        return; /* not blocked: the kernel has delivered it already */
    /* a doorbell queued before it is another fiber's: look behind it */
    enum adopted got;
    bool doorbell = false;
    while ((got = adopt_one(self, fz_sig_bit(sig))) == ADOPTED_DOORBELL)
        doorbell = true;
    /* A standard signal pends once per thread: with a doorbell for it
     * pending here, the kernel dropped the one the call raised.  It is
     * self's all the same, as the kernel would have sent it. */
    if (got == ADOPTED_NONE && doorbell && sig < SIGRTMIN) {
        struct fz_sigsend info = {SI_USER, fz_rt.pid, (uid_t)fz_sys0(SYS_getuid), {0}};
        post(self, sig, &info);
    }
}

/* ---- the fiber delivers its own --------------------------------------- */

void fz_sigthread_deliver_own(struct fz_fiber *self)
{
    uint64_t ready;
    while ((ready = fz_sigthread_deliverable(self))) {
        int sig = __builtin_ctzll(ready) + 1;
        unsigned handled = self->handled;
        /* No handler: the kernel applies the default action (or ignores
         * it) when the doorbell arrives, and no wrapper takes the bit. */
        if (!wrapper_takes(sig))
            atomic_fetch_and(&self->sig_pending, ~fz_sig_bit(sig));
        bool was_raising = self->sig_raising; /* a handler may send one too */
        self->sig_raising = true;
        ring(self->carrier->tid, sig, self);
        self->sig_raising = was_raising;
        if (wrapper_takes(sig) && self->handled == handled &&
            (fz_sigthread_deliverable(self) & fz_sig_bit(sig))) {
            /* not run (the kernel holds the doorbell back): try later,
             * never drop it */
            fz_sigthread_defer(self);
            return;
        }
    }
}

void fz_sigthread_wait_published(struct fz_fiber *self)
{
    uint64_t ready = fz_sigthread_deliverable(self);
    if (!ready)
        return;
    /* one pending handler without SA_RESTART is enough to interrupt */
    int restart = -1;
    for (; ready; ready &= ready - 1) {
        int r = restart_of(__builtin_ctzll(ready) + 1);
        if (r == 0 || (r == 1 && restart < 0))
            restart = r;
    }
    fz_wait_signal(self, restart);
}

void fz_sigthread_resumed(struct fz_fiber *self)
{
    atomic_thread_fence(memory_order_seq_cst);
    /* inside a wait, the wait runs them once it is torn down (park.h) */
    if (self->entered && !self->wait && fz_sigthread_deliverable(self))
        fz_sigthread_deliver_own(self);
}

void fz_sigthread_after_handler(struct fz_fiber *f)
{
    struct fz_carrier *c = f->carrier;
    bool others = atomic_load_explicit(&c->lifo, memory_order_relaxed) || fz_runq_len(&c->runq) ||
                  atomic_load_explicit(&fz_rt.deferred_wakes, memory_order_relaxed) ||
                  !fz_inject_empty(&fz_rt.inject);
    if (others)
        fz_yield(f);
}

void fz_sigthread_post_async(struct fz_fiber *f, int sig, const siginfo_t *info)
{
    struct fz_sigsend s = sigsend_of(info);
    post(f, sig, &s);
    fz_sigthread_defer(f);
}

void fz_sigthread_handler_done(struct fz_fiber *f)
{
    atomic_thread_fence(memory_order_seq_cst); /* pairs with the sender's */
    uint64_t ready = fz_sigthread_deliverable(f);
    if (ready)
        ring(f->carrier->tid, __builtin_ctzll(ready) + 1, f);
}

/* ---- before a handler is taken away ------------------------------------ */

void fz_sigthread_flight_begin(void)
{
    atomic_fetch_add(&in_flight, 1);
    /* Dekker's pattern with settle's caller: it changes the state, fences,
     * then reads in_flight; the bracket counts itself, fences, then reads
     * the state.  One of the two sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
}

void fz_sigthread_flight_end(void)
{
    atomic_fetch_sub(&in_flight, 1);
}

/* Take the process-directed instances of the signals self would run that
 * the kernel still holds for a thread that has not come for them yet:
 * natively the running thread would have taken them at its last system
 * call's return.  (rt_sigpending cannot find them: it reports only
 * blocked ones.) */
static void adopt_process_pending(struct fz_fiber *self)
{
    uint64_t handled = 0;
    for (int sig = 1; sig <= 64; sig++)
        if (restart_of(sig) >= 0)
            handled |= fz_sig_bit(sig);
    handled &= ~self->sigmask;
    while (handled && adopt_one(self, handled) != ADOPTED_NONE)
        ;
}

void fz_sigthread_settle(struct fz_fiber *self)
{
    while (atomic_load(&in_flight))
        fz_sys0(SYS_sched_yield);
    /* A doorbell already sent to this OS thread arrives at this call's
     * return, inside the runtime: deferred, or dropped if its signal has
     * run. */
    fz_sys0(SYS_getpid);
    adopt_process_pending(self);
    if (fz_sigthread_deliverable(self))
        fz_sigthread_deliver_own(self);
}

/* ---- doorbells at bad moments ------------------------------------------ */

void fz_sigthread_defer(struct fz_fiber *f)
{
    for (unsigned i = 0; i < DEFERRED_SLOTS; i++) {
        struct fz_fiber *expected = NULL;
        if (atomic_load_explicit(&deferred[i], memory_order_relaxed) == f)
            return;
        if (atomic_compare_exchange_strong(&deferred[i], &expected, f)) {
            atomic_fetch_add(&deferred_count, 1);
            fz_driver_wake();
            return;
        }
    }
    /* full: f gets its signal at its next switch-in */
}

void fz_sigthread_run_deferred(struct fz_carrier *c)
{
    (void)c;
    if (!atomic_load_explicit(&deferred_count, memory_order_relaxed) ||
        !atomic_exchange(&deferred_count, 0))
        return;
    for (unsigned i = 0; i < DEFERRED_SLOTS; i++) {
        struct fz_fiber *f = atomic_exchange(&deferred[i], NULL);
        if (!f)
            continue;
        fz_sigthread_flight_begin(); /* from the look to the ring */
        uint64_t ready = fz_sigthread_deliverable(f);
        if (ready)
            ring_fiber(f, __builtin_ctzll(ready) + 1);
        fz_sigthread_flight_end();
    }
}

void fz_sigthread_after_fork(void)
{
    for (unsigned i = 0; i < DEFERRED_SLOTS; i++)
        atomic_store(&deferred[i], NULL);
    atomic_store(&deferred_count, 0);
}
