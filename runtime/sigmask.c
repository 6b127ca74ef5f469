/* Per-fiber signal masks (see sigmask.h).
 *
 * Invariants:
 *  - a fiber's `sigmask` is written only by the fiber itself (or before it
 *    is published); readers elsewhere (the interrupt picker) accept a
 *    stale value.  While a handler runs on the fiber it holds the handler's
 *    mask (syscalls/signal.c), which is not counted: `sigmask_counted` is
 *    what the counts below hold for the fiber;
 *  - `unblocked_by[sig]` counts live fibers whose mask lacks sig, and
 *    `blocked_by_all` has exactly the signals whose count is 0; both change
 *    together under `mask_lock`;
 *  - a carrier's `kernel_mask` mirrors its OS thread's mask and is written
 *    only by that carrier: at switch-in (the fiber's mask), at the top
 *    of its idle loop (`blocked_by_all`), and at a switch-out that leaves
 *    a fiber's alternate stack loaded (everything: altstack.c).
 * Signals the kernel cannot block (SIGKILL, SIGSTOP) and glibc's own (32,
 * 33: cancellation and set*id) are never part of a mask.
 */
#include <signal.h>
#include "runtime/fiber.h"
#include "runtime/park.h"
#include "runtime/sched.h"
#include "runtime/sigmask.h"
#include "runtime/sigthread.h"
#include "runtime/sys.h"

/* Masks are one uint64_t, a bit per signal; fz_rt's per-signal arrays have
 * 65 entries (index = signal number). */
_Static_assert(NSIG - 1 <= 64, "a uint64_t holds a bit per signal");

#define UNBLOCKABLE                                                                                \
    ((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)) | (1ull << 31) | (1ull << 32))

uint64_t fz_sigmask_current_kernel(void)
{
    uint64_t mask = 0;
    fz_sys4(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&mask, 8);
    return mask;
}

/* Under mask_lock: count fiber mask `mask` in (+1) or out (-1). */
static void account(uint64_t mask, int delta)
{
    uint64_t all = atomic_load(&fz_rt.blocked_by_all);
    for (int sig = 1; sig <= 64; sig++) {
        uint64_t bit = fz_sig_bit(sig);
        if ((mask & bit) || (UNBLOCKABLE & bit))
            continue;
        fz_rt.unblocked_by[sig] += (unsigned)delta;
        if (fz_rt.unblocked_by[sig] == 0)
            all |= bit;
        else
            all &= ~bit;
    }
    atomic_store(&fz_rt.blocked_by_all, all);
}

/* Under mask_lock, when no fiber has been counted yet: everything is
 * blocked by "all" of none. */
static bool first_fiber(void)
{
    for (int sig = 1; sig <= 64; sig++)
        if (fz_rt.unblocked_by[sig])
            return false;
    return true;
}

void fz_sigmask_fiber_born(struct fz_fiber *f, uint64_t mask)
{
    f->sigmask = f->sigmask_counted = mask & ~UNBLOCKABLE;
    fz_spin_lock(&fz_rt.mask_lock);
    if (first_fiber())
        atomic_store(&fz_rt.blocked_by_all, ~0ull & ~UNBLOCKABLE);
    account(f->sigmask, +1);
    fz_spin_unlock(&fz_rt.mask_lock);
}

void fz_sigmask_fiber_gone(struct fz_fiber *f)
{
    fz_spin_lock(&fz_rt.mask_lock);
    account(f->sigmask_counted, -1);
    fz_spin_unlock(&fz_rt.mask_lock);
}

void fz_sigmask_load(struct fz_carrier *c, uint64_t mask)
{
    fz_sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8);
    c->kernel_mask = mask;
}

/* Wait (briefly) until every idle carrier has loaded `mask`, so a signal
 * newly blocked by everyone cannot reach one that still accepts it.
 * Carriers running fibers have their fiber's mask loaded already. */
static void await_idle_carriers(struct fz_carrier *self, uint64_t mask)
{
    uint64_t give_up = fz_now_ns() + 50000000;
    fz_sched_kick_idle();
    for (;;) {
        bool all = true;
        unsigned n = atomic_load(&fz_rt.ncarriers);
        for (unsigned i = 0; i < n; i++) {
            struct fz_carrier *c = &fz_rt.carriers[i];
            bool running = __atomic_load_n(&c->current, __ATOMIC_RELAXED) != NULL;
            uint64_t loaded = __atomic_load_n(&c->kernel_mask, __ATOMIC_RELAXED);
            if (c != self && !running && !atomic_load(&c->retired) && (loaded & mask) != mask)
                all = false;
        }
        if (all || fz_now_ns() > give_up)
            return;
        fz_sleep_until(fz_now_ns() + 100000, FZ_INTR_NONE);
    }
}

void fz_sigmask_change(struct fz_fiber *self, uint64_t mask)
{
    mask &= ~UNBLOCKABLE;
    fz_spin_lock(&fz_rt.mask_lock);
    uint64_t before = atomic_load(&fz_rt.blocked_by_all);
    account(self->sigmask_counted, -1);
    self->sigmask = self->sigmask_counted = mask;
    account(mask, +1);
    uint64_t after = atomic_load(&fz_rt.blocked_by_all);
    fz_spin_unlock(&fz_rt.mask_lock);
    fz_sigmask_load(self->carrier, mask);
    if (after & ~before)
        await_idle_carriers(self->carrier, after);
    else if (after != before)
        fz_sched_kick_idle();
    /* signals sent to this thread and now unblocked run before the call
     * that unblocked them returns, as natively (the fence pairs with the
     * sender's: it sees the new mask or this sees its signal) */
    atomic_thread_fence(memory_order_seq_cst);
    if (fz_sigthread_deliverable(self))
        fz_sigthread_deliver_own(self);
}

uint64_t fz_sigmask_of(struct fz_fiber *self)
{
    return self->sigmask;
}
