/* Work-stealing scheduler over carrier threads.
 *
 * Each carrier runs fibers from, in order: its LIFO slot (the fiber its
 * running fiber woke last), its local ring, the global inject queue (checked
 * first every 61st pick so it cannot starve; the LIFO fiber then moves to
 * the ring, where thieves see it), and finally half of another carrier's
 * ring.  Switches go fiber to fiber directly on the parking fiber's stack
 * (fiber.h explains why that is race-free); a carrier falls back to its
 * idle context only when nothing is runnable.
 *
 * LIFO slot (runq.h): a waker that parks right away (a ping-pong) hands its
 * carrier to the fiber it woke, on the same CPU.  But a woken thread never
 * waits behind its waker natively, so a fiber must not be stranded there
 * when the waker keeps its carrier -- runs on, spins on a trylock, blocks
 * in a call that does not park.  So a fiber that fills an empty slot
 * "offers" it: unless a carrier is searching already, it wakes an idle
 * carrier and records the slot as it sees it.  The woken carrier searches:
 * 100 us after the offer (a woken native thread may wait about as long for
 * a CPU; sooner, the fiber often only blocks on locks the waker releases
 * next) it takes the fiber if the slot still holds it and its owner has not
 * switched since; then it keeps looking at every slot for 1 ms, pauses doubling from
 * 50 us, taking a fiber that stayed in a slot between two looks while its
 * owner did not switch.  Offers made while it searches wake nobody: a run
 * of ping-pong hand-offs costs one wake-up per search, not one each.  When
 * every carrier is busy the monitor moves a LIFO fiber to the inject queue
 * once its carrier ran one fiber for a whole sample (runtime/monitor.c).
 *
 * Thread pointer: a fiber loads its own TCB when it is switched in, and only
 * if the carrier has another one loaded, so a switch costs at most one
 * thread-pointer write and a fiber that parks and is resumed on the same
 * carrier with nothing in between costs none.  A carrier that goes idle or
 * to sleep keeps the last fiber's TCB loaded: loading its own would cost a
 * write now and another at the next switch-in (each an arch_prctl where the
 * kernel does not allow wrfsbase: 2-5 us on a paravirtualised VM, a fifth
 * of the thread-pointer writes of an HTTP server at 10 connections).  No
 * code that runs on an idle carrier writes TLS: a signal that lands there
 * runs no program handler (syscalls/signal.c redirects it to a fiber),
 * SIGSETXID's handler loads the carrier's own TCB (setxid_glibc.c), and a
 * dump's sample touches errno only on the sampled fiber's TCB (dump.c).
 * tls_signal (tests/bats/tls.bats) sends thousands of signals at carriers
 * in every state and checks that no fiber's TLS changed under it.
 *
 * Idle protocol (no lost wake-ups): a carrier with no work first peeks at
 * the fds if another carrier sleeps in the driver, searches if it was just
 * woken, then puts itself on the idle list, re-checks every queue and looks
 * at the LIFO slots twice 50 us apart (last_look: offers made while it
 * searched woke nobody), and only then sleeps -- in the driver (epoll_wait
 * until the next timer) if it can take the driver role, else on its futex
 * word.  Whoever makes work runnable publishes it first (a ring, the inject
 * queue, or a LIFO slot its fiber may not leave soon) and then pops one
 * idle carrier and wakes it; a thief that leaves stolen fibers in its ring
 * wakes one too.  Both sides order "publish" before "look at the other
 * side" (a full fence, or a sequentially consistent exchange and loads for
 * the LIFO slot).  Wakes made on a carrier's scheduler path (driver,
 * timers, signal handlers' deferred wakes, the fork child's rebuilt
 * carriers) land in that carrier's slot and run next there: no offer.
 *
 * Everything on this path is TLS-free (raw syscalls, no libc but the vDSO
 * clock): the loaded thread pointer may belong to a fiber now running on
 * another carrier.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "runtime/affinity.h"
#include "runtime/altstack.h"
#include "runtime/cputime.h"
#include "runtime/det.h"
#include "runtime/driver.h"
#include "runtime/dump.h"
#include "runtime/monitor.h"
#include "runtime/park.h"
#include "runtime/pool.h"
#include "runtime/asan.h"
#include "runtime/sched.h"
#include "runtime/sigmask.h"
#include "runtime/sigthread.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

#define GLOBAL_QUEUE_INTERVAL 61
#define IDLE_STACK_SIZE (256 * 1024)
/* A carrier woken from its sleep keeps looking for work for SEARCH_NS
 * before it sleeps again, so a run of LIFO offers (offer_lifo) costs one
 * wake-up, not one each.  It looks every SEARCH_PAUSE_NS: a fiber that sat
 * in a LIFO slot that long while its waker kept the carrier is taken --
 * far longer than a ping-pong partner takes to park (well under 1 us),
 * about what a woken native thread may wait for a CPU (the kernel's
 * default timer slack is 50 us, so a pause lasts 50-100 us). */
#define SEARCH_NS 1000000u
#define SEARCH_PAUSE_NS 50000u
/* A carrier woken for a LIFO offer takes the fiber no sooner than this
 * after the offer (if the waker has not switched meanwhile): a woken
 * native thread may wait about as long for a CPU, and a waker that
 * releases more locks right after the wake has done so by then.  With
 * 30 us, MariaDB's killer (tests/programs/real/mariadb.bats) more often
 * found its victims parked on the locks it still held. */
#define OFFER_GRACE_NS 100000u
/* --seed: how long the carrier waits for a blocking-pool call to come back
 * before a due timer goes first (runtime/det.c): fsync and friends take
 * microseconds, so their replays stay exact; a file-lock wait held by
 * another thread of the program costs this per turn of its wait. */
#define DET_POOL_PATIENCE_NS 10000000u
/* --seed: how long every thread must have waited for another one, with
 * nothing else in sight, before it is reported as a deadlock: time for a
 * thread that is not a fiber to act (a native deadlock lasts for ever). */
#define DET_DEADLOCK_GRACE_NS 1000000000u

struct fz_runtime fz_rt;

/* Shrinking back to one OS thread (fz_sched_shrink, below). */
static atomic_int shrinking;            /* set by main, cleared by carrier 0 */
static struct fz_waiter *shrink_waiter; /* main's, published before shrinking */
static unsigned shrunk_slots;           /* carriers[] slots carrier 0 saw in use */

struct fz_fiber *fz_self(void)
{
    if (!fz_rt.active)
        return NULL;
    struct fz_fiber *f = fz_tls_current_fiber();
    if (!f)
        return NULL;
    /* A carrier's idle context may still have this fiber's TCB loaded while
     * the fiber runs elsewhere: only code on the fiber's own stack is it. */
    char *sp = __builtin_frame_address(0);
    if ((sp < (char *)f->stack.base || sp >= (char *)fz_stack_top(&f->stack)) &&
        !fz_altstack_contains(f, sp)) /* or a handler of it on its sigaltstack */
        return NULL;
    /* a vfork child borrowing the fiber's stack until it execs: to the
     * interposers it is a thread of its own, whose calls are the real ones */
    if (f->vfork_child)
        return NULL;
    return f;
}

bool fz_in_vfork_child(void)
{
    if (!fz_rt.pid)
        return false;
    struct fz_fiber *f = fz_tls_current_fiber();
    if (f && f->vfork_child) { /* and on its stack: not an idle context */
        char *sp = __builtin_frame_address(0);
        if (sp >= (char *)f->stack.base && sp < (char *)fz_stack_top(&f->stack))
            return true;
    }
    return atomic_load_explicit(&fz_rt.vm_clones, memory_order_relaxed) &&
           fz_sys0(SYS_getpid) != fz_rt.pid;
}

bool fz_on_carrier(void)
{
    if (!fz_rt.active)
        return false;
    if (fz_tls_current_fiber())
        return true; /* a fiber's TCB is loaded only on carriers */
    void *tp = fz_thread_pointer();
    unsigned n = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (fz_rt.carriers[i].own_tcb == tp)
            return true;
    return false;
}

/* ---- finding work ---------------------------------------------------- */

static void notify_idle(void);

/* Half of another carrier's ring.  Stolen tasks left in our ring are
 * stealable work: an idle carrier may take some. */
static struct fz_fiber *steal(struct fz_carrier *c)
{
    unsigned n = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
    c->rng = c->rng * 1103515245u + 12345u;
    unsigned start = (c->rng >> 16) % n;
    for (unsigned i = 0; i < n; i++) {
        struct fz_carrier *v = &fz_rt.carriers[(start + i) % n];
        if (v == c || fz_runq_len(&v->runq) == 0)
            continue;
        struct fz_task *t = fz_runq_steal(&c->runq, &v->runq);
        if (t) {
            c->stats.steals++;
            if (fz_runq_len(&c->runq))
                notify_idle();
            return fz_fiber_of_task(t);
        }
    }
    return NULL;
}

/* ---- fibers stranded in LIFO slots ------------------------------------ */

/* Carriers whose LIFO slots a searching carrier compares between looks;
 * slots beyond (spares of a very busy program) are left to the monitor. */
#define LOOK_MAX 64

struct lifo_looks {
    unsigned n;
    bool any; /* some slot held a task */
    struct fz_lifo_seen seen[LOOK_MAX];
};

static void look_at_lifos(const struct fz_carrier *c, struct lifo_looks *l)
{
    unsigned n = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
    l->n = n < LOOK_MAX ? n : LOOK_MAX;
    l->any = false;
    for (unsigned i = 0; i < l->n; i++) {
        struct fz_carrier *v = &fz_rt.carriers[i];
        static const struct fz_lifo_seen nothing; /* its own slot: never taken here */
        l->seen[i] = v == c ? nothing : fz_lifo_look(&v->lifo, &v->epoch);
        l->any |= l->seen[i].task != NULL;
    }
}

/* A fiber that sat in the same carrier's LIFO slot since the last look,
 * while that carrier's waker kept running: take it. */
static struct fz_fiber *take_stranded(struct fz_carrier *c, const struct lifo_looks *l)
{
    for (unsigned i = 0; l->any && i < l->n; i++) {
        struct fz_carrier *v = &fz_rt.carriers[i];
        struct fz_task *t = fz_lifo_steal(&v->lifo, &v->epoch, l->seen[i]);
        if (t) {
            c->stats.steals++;
            return fz_fiber_of_task(t);
        }
    }
    return NULL;
}

static void handle_interrupts(void)
{
    if (!atomic_exchange(&fz_rt.pending_interrupts, 0))
        return;
    for (int restart = 0; restart < 2; restart++)
        for (int sig = 1; sig <= 64; sig++) {
            unsigned n = atomic_exchange(&fz_rt.pending_signal[restart][sig], 0);
            while (n--)
                fz_interrupt_one(sig, restart);
        }
}

/* The caller gives up the driver role to run fibers, one of which may
 * block where fiberize cannot see (a FILE's refill inside glibc).  It is
 * usually off the idle list; not when find_work runs between idle_push and
 * the sleep (idle loop, last_look), where the wake may pick the caller
 * itself, which then runs or takes the role in sleep_idle -- the other
 * sleeper stays asleep then (a wake_idle that skips the caller would
 * close that).  A carrier that went idle while the caller held the role
 * sleeps on its futex, counting on the holder to watch timers and fds:
 * wake it to take the role (notify_idle prefers such a one; its seq_cst
 * fence orders the release before its look at num_idle, so a sleeper's
 * push is seen), or a sleeping fiber's timer never fires (wake_timer_idle;
 * stdio_lines contract hung in CI with the feeder's nanosleep due for
 * 90 s).  Once one carrier holds the role again, others cannot take it,
 * so this costs at most one extra wake-up per window. */
static void hand_over_driver(void)
{
    fz_driver_release();
    notify_idle();
}

/* Take in what the fds have ready now, unless another carrier holds the
 * driver role (it then takes them itself), and hand the role on. */
static void poll_fds_now(struct fz_carrier *c)
{
    if (fz_driver_acquire()) {
        fz_driver_poll_busy(c);
        hand_over_driver();
    }
}

/* --seed: one carrier, and the run set of runtime/det.c instead of the
 * slot, the ring and the inject queue.  Timers and ready fds are taken in
 * at every pick (on the virtual clock, and epoll's order of readiness is
 * the order the program made things ready), so a fiber they wake competes
 * at once, at a point of the schedule that does not depend on the
 * machine. */
static struct fz_fiber *det_find_work(struct fz_carrier *c)
{
    if (atomic_load_explicit(&fz_rt.pending_interrupts, memory_order_relaxed))
        handle_interrupts();
    if (c->det_next) {
        struct fz_fiber *f = c->det_next;
        c->det_next = NULL;
        return f;
    }
    if (c->det_fd_waiters)
        poll_fds_now(c);
    if (fz_timers_due())
        fz_timers_fire(c);
    return fz_det_pick();
}

static struct fz_fiber *find_work(struct fz_carrier *c)
{
    struct fz_task *t;
    if (atomic_load_explicit(&fz_rt.deferred_wakes, memory_order_relaxed))
        fz_park_run_deferred(c);
    fz_sigthread_run_deferred(c);
    if (fz_det_on)
        return det_find_work(c);
    if (++c->tick % GLOBAL_QUEUE_INTERVAL == 0) {
        if (atomic_load_explicit(&fz_rt.pending_interrupts, memory_order_relaxed))
            handle_interrupts();
        /* With every carrier busy nobody sleeps in the driver: look at the
         * fds now and then anyway, or ready fibers wait for an idle moment. */
        poll_fds_now(c);
        if (fz_timers_due())
            fz_timers_fire(c);
        if ((t = fz_inject_pop(&fz_rt.inject))) {
            /* the LIFO task would wait behind it: make it stealable */
            struct fz_task *l = fz_lifo_take(&c->lifo);
            if (l) {
                fz_runq_push(&c->runq, l, &fz_rt.inject);
                notify_idle();
            }
            goto found_inject;
        }
    }
    if ((t = fz_lifo_take(&c->lifo)))
        return fz_fiber_of_task(t);
    if ((t = fz_runq_pop(&c->runq)))
        return fz_fiber_of_task(t);
    if ((t = fz_inject_pop(&fz_rt.inject)))
        goto found_inject;
    return steal(c);
found_inject:
    c->stats.inject_pops++;
    return fz_fiber_of_task(t);
}

/* ---- waking carriers ------------------------------------------------- */

static void idle_push(struct fz_carrier *c)
{
    fz_spin_lock(&fz_rt.idle_lock);
    c->next_idle = fz_rt.idle_head;
    fz_rt.idle_head = c;
    atomic_store_explicit(&c->in_idle_list, 1, memory_order_relaxed);
    atomic_fetch_add(&fz_rt.num_idle, 1);
    fz_spin_unlock(&fz_rt.idle_lock);
}

static void idle_unlink_locked(struct fz_carrier *c)
{
    for (struct fz_carrier **p = &fz_rt.idle_head; *p; p = &(*p)->next_idle)
        if (*p == c) {
            *p = c->next_idle;
            atomic_store_explicit(&c->in_idle_list, 0, memory_order_relaxed);
            atomic_fetch_sub(&fz_rt.num_idle, 1);
            return;
        }
}

static void kick_monitor(void);

/* Every way off the idle list ends here (a waker that unlinked c counted it
 * off already), so the monitor, which sleeps while every carrier is
 * counted idle, watches again before c runs a fiber that may get stuck.
 * The searcher's pauses and last_look leave the list without sleeping; a
 * carrier that went on to block in a system call after one of those once
 * left the monitor asleep for good (pool_fifo: a FIFO write, which cannot
 * be made non-blocking, held the only carrier). */
static void idle_remove(struct fz_carrier *c)
{
    if (atomic_load(&c->in_idle_list)) {
        fz_spin_lock(&fz_rt.idle_lock);
        idle_unlink_locked(c);
        fz_spin_unlock(&fz_rt.idle_lock);
    }
    kick_monitor();
}

/* Wake one idle carrier, preferring one that sleeps on its futex: the one
 * in the driver keeps watching fds and timers.  offer: the LIFO slot the
 * wake is for (offer_lifo), or NULL. */
static void wake_idle(struct fz_carrier *offer)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&fz_rt.num_idle, memory_order_relaxed) == 0)
        return;
    fz_spin_lock(&fz_rt.idle_lock);
    struct fz_carrier *pick = NULL;
    for (struct fz_carrier *v = fz_rt.idle_head; v; v = v->next_idle)
        if (!pick || (pick->driving && !v->driving))
            pick = v;
    if (pick)
        idle_unlink_locked(pick);
    if (pick && offer) {
        /* the first of the searcher's two looks at the slot (search) */
        fz_rt.offer_from = offer;
        fz_rt.offer_seen = fz_lifo_look(&offer->lifo, &offer->epoch);
        fz_rt.offer_time = fz_clock_on(offer, false); /* offer: this OS thread's */
    }
    fz_spin_unlock(&fz_rt.idle_lock);
    if (!pick)
        return;
    if (pick->driving) {
        fz_driver_wake();
    } else {
        atomic_store(&pick->park_word, 0);
        fz_futex_wake(&pick->park_word, 1);
    }
}

static void notify_idle(void)
{
    wake_idle(NULL);
}

/* Every carrier on the idle list is unlinked before it is woken, as
 * notify_idle does for one, so that its sleep (sleep_on_futex,
 * sleep_in_driver, a search's pause) ends or never starts even if the wake
 * comes before it stores its park_word; one not on the list yet sees
 * whatever the caller changed first once it pushes itself. */
void fz_sched_kick_idle(void)
{
    bool driver = false;
    fz_spin_lock(&fz_rt.idle_lock);
    while (fz_rt.idle_head) {
        struct fz_carrier *v = fz_rt.idle_head;
        idle_unlink_locked(v);
        driver |= v->driving;
        atomic_store(&v->park_word, 0);
        fz_futex_wake(&v->park_word, 1);
    }
    fz_spin_unlock(&fz_rt.idle_lock);
    if (driver)
        fz_driver_wake(); /* the one in epoll */
}

void fz_sched_rescue_lifo(struct fz_carrier *c)
{
    struct fz_task *t = fz_lifo_take(&c->lifo);
    if (t) {
        fz_inject_push(&fz_rt.inject, t);
        notify_idle();
    }
}

/* ---- switching ------------------------------------------------------- */

static void reap_dead(struct fz_carrier *c)
{
    struct fz_fiber *dead = c->dead;
    if (dead) {
        c->dead = NULL;
        fz_fiber_reap(c, dead);
    }
}

/* Scheduler code is over on c: signals sent to self run now (sigthread.c).
 * Doorbells that land while sched_busy is set wait for this. */
static void back_in_fiber(struct fz_carrier *c, struct fz_fiber *self)
{
    c->sched_busy = false;
    fz_sigthread_resumed(self);
}

/* --seed: a fiber that parked on an fd runs again (sched.h). */
static void det_fd_wait_over(struct fz_carrier *c, struct fz_fiber *self)
{
    if (self->det_on_fd) {
        self->det_on_fd = false;
        c->det_fd_waiters--;
    }
}

/* self's alternate stack, then its signal mask, onto c.  In that order:
 * the last fiber's stack may still be loaded, with every signal blocked
 * (altstack.c's switch-out). */
static void load_signal_state(struct fz_carrier *c, struct fz_fiber *self)
{
    fz_altstack_switch_in(c, self);
    if (c->kernel_mask != self->sigmask)
        fz_sigmask_load(c, self->sigmask);
}

void fz_sched_resumed(struct fz_fiber *self)
{
    struct fz_carrier *c = self->carrier;
    det_fd_wait_over(c, self);
    load_signal_state(c, self);
    fz_affinity_switch_in(c, self);
    if (c->loaded_tcb != self->tcb) {
        fz_set_thread_pointer(self->tcb);
        c->loaded_tcb = self->tcb;
        c->stats.tp_writes++;
    }
    fz_asan_tcb_loaded(c);
    fz_asan_arrive(self->asan_save);
    reap_dead(c);
    back_in_fiber(c, self);
}

static void claim_cpu(struct fz_carrier *c, struct fz_fiber *next)
{
    for (;;) {
        while (atomic_load_explicit(&next->on_cpu, memory_order_acquire))
            fz_cpu_relax();
        /* One carrier claims a fiber at a time: a fiber is queued once per
         * wake, so no other carrier can have set on_cpu since the loop saw
         * 0 (a dump only reads it, below). */
        if (FZ_CHECKS) {
            int was = atomic_exchange_explicit(&next->on_cpu, 1, memory_order_relaxed);
            FZ_ASSERT(was == 0);
        } else {
            atomic_store_explicit(&next->on_cpu, 1, memory_order_relaxed);
        }
        /* A dump may be reading next's saved context: it sets dump_hold,
         * then membarrier(2) fences every carrier, then reads on_cpu; so
         * a compiler fence suffices here (runtime/dump.c). */
        atomic_signal_fence(memory_order_seq_cst);
        if (__builtin_expect(!atomic_load_explicit(&next->dump_hold, memory_order_relaxed), 1))
            break;
        atomic_store_explicit(&next->on_cpu, 0, memory_order_release);
        fz_dump_wait_hold(next);
    }
    next->carrier = c;
    next->state = FZ_FIBER_RUNNING;
    c->current = next;
    c->sched_busy = true;
    c->stats.switches++;
    /* single writer: a plain increment, published for the monitor */
    atomic_store_explicit(&c->epoch, atomic_load_explicit(&c->epoch, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Leave `self` (already marked parked/runnable/dead by the caller) for the
 * next runnable fiber, or for the idle context. */
static void switch_away(struct fz_carrier *c, struct fz_fiber *self)
{
    c->sched_busy = true;
    if (atomic_load_explicit(&fz_cputime_on, memory_order_relaxed))
        fz_cputime_stop(c, self); /* the next fiber starts from this mark */
    /* Once self may run elsewhere it may unmap its alternate stack there
     * (Rust's thread exit): this carrier must not keep it loaded. */
    fz_altstack_switch_out(c);
    struct fz_fiber *next = find_work(c);
    if (next == self) { /* woken before it got away */
        self->state = FZ_FIBER_RUNNING;
        det_fd_wait_over(c, self);
        load_signal_state(c, self); /* switch-out may have blocked all */
        back_in_fiber(c, self);
        return;
    }
    void **asan_save = &self->asan_save;
    if (self->state == FZ_FIBER_DONE) {
        asan_save = NULL;
        fz_asan_stack_done(&self->stack);
    }
    if (next && atomic_load_explicit(&next->on_cpu, memory_order_acquire)) {
        /* next is still switching out on another carrier, which may be
         * waiting the same way for self: never wait while holding self.
         * The idle context claims next once self is saved. */
        c->handoff = next;
        c->current = NULL;
        fz_asan_leave(asan_save, &c->asan_idle);
        fz_switch(&self->sp, c->idle_sp, &self->on_cpu);
    } else if (next) {
        claim_cpu(c, next);
        fz_asan_leave(asan_save, &next->stack);
        fz_switch(&self->sp, next->sp, &self->on_cpu);
    } else {
        c->current = NULL;
        fz_asan_leave(asan_save, &c->asan_idle);
        fz_switch(&self->sp, c->idle_sp, &self->on_cpu);
    }
    fz_sched_resumed(self);
}

void fz_park(struct fz_fiber *self)
{
    struct fz_carrier *c = self->carrier;
    self->state = FZ_FIBER_PARKED;
    c->stats.parks++;
    switch_away(c, self);
}

/* --seed: at a scheduling point det.c may choose another fiber. */
static void det_point(struct fz_fiber *self, bool forced)
{
    struct fz_carrier *c = self->carrier;
    struct fz_fiber *next = fz_det_preempt(self, forced);
    if (!next)
        return;
    c->stats.yields++;
    self->state = FZ_FIBER_RUNNABLE;
    fz_det_push(self, true);
    c->det_next = next;
    switch_away(c, self);
}

void fz_sched_point(struct fz_fiber *self)
{
    det_point(self, false);
}

void fz_yield(struct fz_fiber *self)
{
    struct fz_carrier *c = self->carrier;
    if (fz_det_on) {
        det_point(self, true);
        return;
    }
    c->stats.yields++;
    self->state = FZ_FIBER_RUNNABLE;
    fz_runq_push(&c->runq, &self->task, &fz_rt.inject);
    switch_away(c, self);
}

void fz_exit_switch(struct fz_fiber *self)
{
    struct fz_carrier *c = self->carrier;
    self->state = FZ_FIBER_DONE;
    c->dead = self;
    switch_away(c, self);
    __builtin_unreachable();
}

/* The waker keeps running after filling its LIFO slot: if it does not park
 * within the grace period, the woken fiber must be able to run elsewhere,
 * as a woken thread would on another CPU.  So unless a carrier is already
 * searching (it will look at the slot), wake an idle one, which searches.
 * The slot was filled with a sequentially consistent exchange, so these
 * loads need no fence (see the idle protocol above). */
static void offer_lifo(struct fz_carrier *c)
{
    if (atomic_load_explicit(&fz_rt.num_searching, memory_order_seq_cst) == 0 &&
        atomic_load_explicit(&fz_rt.num_idle, memory_order_seq_cst) != 0)
        wake_idle(c);
}

/* waker_runs_on: the caller is the running fiber of c, which goes on
 * running after the wake; otherwise c is on its scheduler path and picks
 * its LIFO slot next. */
static void push_runnable(struct fz_carrier *c, struct fz_fiber *f, bool lifo, bool waker_runs_on)
{
    f->state = FZ_FIBER_RUNNABLE;
    c->stats.wakes++;
    if (fz_det_on) {
        fz_det_push(f, true);
        return;
    }
    if (lifo) {
        struct fz_task *old = fz_lifo_put(&c->lifo, &f->task);
        if (!old) {
            if (waker_runs_on)
                offer_lifo(c);
            return;
        }
        fz_runq_push(&c->runq, old, &fz_rt.inject);
    } else {
        fz_runq_push(&c->runq, &f->task, &fz_rt.inject);
    }
    notify_idle();
}

void fz_unpark_on(struct fz_carrier *c, struct fz_fiber *f)
{
    if (c) { /* scheduler path of carrier c: it runs the first one itself */
        push_runnable(c, f, atomic_load_explicit(&c->lifo, memory_order_relaxed) == NULL, false);
        return;
    }
    struct fz_fiber *self = fz_self();
    if (self) {
        /* A fiber that is not RUNNING is switching away (a wake from inside
         * find_work, on its stack): its carrier picks the slot next. */
        push_runnable(self->carrier, f, true, self->state == FZ_FIBER_RUNNING);
        return;
    }
    f->state = FZ_FIBER_RUNNABLE;
    if (fz_det_on)
        fz_det_push(f, false); /* taken in at a fixed point (det.c) */
    else
        fz_inject_push(&fz_rt.inject, &f->task);
    notify_idle();
}

static void start_carriers_later(void);

/* A new thread runs in parallel with its creator natively, so it goes to
 * the stealable queue and wakes an idle carrier, never to the LIFO slot
 * (which only its own carrier takes from). */
void fz_spawn(struct fz_fiber *f)
{
    if (__builtin_expect(fz_rt.carriers_later != 0, 0))
        start_carriers_later(); /* before f can be seen: the main fiber is the only one so far */
    struct fz_fiber *self = fz_self();
    if (self) {
        push_runnable(self->carrier, f, false, true);
        return;
    }
    fz_unpark_on(NULL, f);
}

/* ---- the idle context ------------------------------------------------ */

static void load_own_tcb(struct fz_carrier *c);

/* Back on the idle context.  Under ASan it runs on the carrier's own TCB
 * (see runtime/asan.h); otherwise the last fiber's may stay loaded. */
static void idle_arrived(struct fz_carrier *c)
{
    if (FZ_ASAN_ON)
        load_own_tcb(c);
    fz_asan_arrive(c->asan_idle_save);
}

static void run_from_idle(struct fz_carrier *c, struct fz_fiber *f)
{
    claim_cpu(c, f);
    if (atomic_load_explicit(&fz_cputime_on, memory_order_relaxed))
        fz_cputime_start(c);
    fz_asan_leave(&c->asan_idle_save, &f->stack);
    fz_switch(&c->idle_sp, f->sp, NULL);
    idle_arrived(c);
    reap_dead(c);
}

static void sleep_in_driver(struct fz_carrier *c)
{
    /* Decided under idle_lock, where notify_idle reads it: a carrier that
     * was already picked (and woken on its futex word) must not block. */
    fz_spin_lock(&fz_rt.idle_lock);
    bool picked = !atomic_load(&c->in_idle_list);
    c->driving = !picked;
    fz_spin_unlock(&fz_rt.idle_lock);
    fz_driver_poll(c, !picked);
    c->driving = false;
    idle_remove(c); /* first: the hand-over must not pick this carrier */
    hand_over_driver();
}

static void sleep_on_futex(struct fz_carrier *c)
{
    atomic_store(&c->park_word, 1);
    if (atomic_load(&c->in_idle_list))
        fz_futex_wait(&c->park_word, 1, NULL);
    idle_remove(c);
}

/* A carrier leaves idle: the monitor, if it sleeps because everything was
 * idle, must watch again.  Dekker's pattern with the monitor (monitor.c):
 * it stores monitor_asleep then reads num_idle, the carrier changed
 * num_idle then reads monitor_asleep, all sequentially consistent, so one
 * of the two sees the other (a plain load on x86). */
static void kick_monitor(void)
{
    if (atomic_load_explicit(&fz_rt.monitor_asleep, memory_order_seq_cst) &&
        atomic_exchange(&fz_rt.monitor_asleep, 0))
        fz_futex_wake(&fz_rt.monitor_asleep, 1);
}

/* A spare runs only while some carrier is stuck.  At an idle point with
 * more spares running than carriers stuck, it hands its queue to the
 * inject queue and sleeps until the monitor needs it again. */
static bool spare_should_retire(void)
{
    unsigned running = atomic_load(&fz_rt.spares_running);
    while (running > atomic_load(&fz_rt.stuck))
        if (atomic_compare_exchange_weak(&fz_rt.spares_running, &running, running - 1))
            return true;
    return false;
}

static void spare_retire(struct fz_carrier *c)
{
    struct fz_task *t;
    if ((t = fz_lifo_take(&c->lifo)))
        fz_inject_push(&fz_rt.inject, t);
    while ((t = fz_runq_pop(&c->runq)))
        fz_inject_push(&fz_rt.inject, t);
    /* Always pass a wake-up on: the one that made this spare leave its
     * futex may have been meant for work it will now not do. */
    notify_idle();
    atomic_store(&c->retire_word, 1);
    atomic_store(&c->retired, 1);
    uint64_t slept = fz_now_ns();
    /* shrinking is read after retired is set, and shrink_coordinate reads
     * retired after shrinking was set: it is seen here, or this sleep is
     * ended there */
    while (atomic_load(&c->retire_word) && !atomic_load(&shrinking))
        fz_futex_wait(&c->retire_word, 1, NULL);
    c->stats.idle_ns += fz_now_ns() - slept;
}

/* Before code that uses libc on the idle context (ASan's bookkeeping, the
 * deadlock report): the fiber that ran here last may be running on another
 * carrier by now. */
static void load_own_tcb(struct fz_carrier *c)
{
    if (c->loaded_tcb != c->own_tcb) {
        fz_set_thread_pointer(c->own_tcb);
        c->loaded_tcb = c->own_tcb;
        c->stats.tp_writes++;
        fz_asan_tcb_loaded(c);
    }
}

/* Sleep until `deadline`, a timed futex sleep rather than a spin (a
 * spinning carrier takes CPU time from the busy ones).  A carrier on the
 * idle list returns early when notify_idle picks it (it clears in_idle_list
 * before park_word). */
static void pause_until(struct fz_carrier *c, uint64_t deadline, bool listed)
{
    atomic_store(&c->park_word, 1);
    if (listed && !atomic_load(&c->in_idle_list))
        return;
    struct timespec ts = fz_ns_to_ts(deadline);
    fz_futex_wait(&c->park_word, 1, &ts);
}

/* Woken from its sleep with nothing to run: keep looking for a while
 * (offer_lifo relies on it while num_searching is set), the first look
 * SEARCH_PAUSE_NS after the last, then twice as long each time.  At most
 * one carrier searches at a time. */
static struct fz_fiber *search(struct fz_carrier *c)
{
    /* Alone (one carrier, no spare running), there is no slot or ring to
     * search, and its pauses only delayed the fds: a pipe ping-pong on one
     * carrier took 126 us a round trip (5 us on two). */
    if (fz_rt.target <= 1 && atomic_load_explicit(&fz_rt.spares_running, memory_order_relaxed) == 0)
        return NULL;
    unsigned none = 0;
    if (!atomic_compare_exchange_strong(&fz_rt.num_searching, &none, 1))
        return NULL;
    /* Woken for a LIFO offer: the waker's look at its slot then is the
     * first look, the wake-up's latency the pause.  If the waker is still
     * running, the fiber has waited about as long as a woken thread waits
     * to be scheduled natively. */
    fz_spin_lock(&fz_rt.idle_lock);
    struct fz_carrier *v = fz_rt.offer_from;
    struct fz_lifo_seen offered = fz_rt.offer_seen;
    uint64_t offered_at = fz_rt.offer_time;
    fz_rt.offer_from = NULL;
    fz_spin_unlock(&fz_rt.idle_lock);
    struct fz_task *t;
    if (v && v != c && fz_now_ns() < offered_at + OFFER_GRACE_NS)
        pause_until(c, offered_at + OFFER_GRACE_NS, false); /* this carrier was awake already */
    if (v && v != c && (t = fz_lifo_steal(&v->lifo, &v->epoch, offered))) {
        c->stats.steals++;
        atomic_store(&fz_rt.num_searching, 0);
        return fz_fiber_of_task(t);
    }
    struct fz_fiber *f = NULL;
    struct lifo_looks looks;
    look_at_lifos(c, &looks);
    uint64_t until = fz_now_ns() + SEARCH_NS, pause = SEARCH_PAUSE_NS;
    for (;;) {
        uint64_t now = fz_now_ns();
        if (now >= until || c->handoff || atomic_load(&fz_rt.pending_interrupts) ||
            atomic_load(&shrinking))
            break;
        /* growing pauses: each wake-up of this carrier costs CPU time the
         * busy ones may need (a run of ping-pong offers sees few of them).
         * On the idle list meanwhile, so work pushed to a ring or the
         * inject queue (notify_idle) ends the pause at once. */
        idle_push(c);
        pause_until(c, now + pause < until ? now + pause : until, true);
        idle_remove(c);
        pause *= 2;
        if ((f = find_work(c)) || (f = take_stranded(c, &looks)))
            break;
        /* nobody may be sleeping in the driver meanwhile */
        poll_fds_now(c);
        if (fz_timers_due())
            fz_timers_fire(c);
        if ((f = find_work(c)))
            break;
        look_at_lifos(c, &looks);
    }
    /* Sequentially consistent, before this carrier goes on the idle list
     * and looks at the LIFO slots once more (last_look). */
    atomic_store(&fz_rt.num_searching, 0);
    return f;
}

/* On the idle list, before sleeping: a waker that saw a searcher did not
 * wake anyone for the fiber it put in its LIFO slot, so look at the slots
 * twice, a pause apart; a slot that changed meanwhile was filled by a waker
 * that saw no searcher and woke an idle carrier itself. */
static struct fz_fiber *last_look(struct fz_carrier *c)
{
    struct lifo_looks looks;
    look_at_lifos(c, &looks);
    if (!looks.any)
        return NULL;
    pause_until(c, fz_now_ns() + SEARCH_PAUSE_NS, true);
    struct fz_fiber *f = find_work(c);
    return f ? f : take_stranded(c, &looks);
}

/* On the idle list with nothing to run: sleep in the driver if no other
 * carrier holds that role, else on the futex word, until woken (the idle
 * protocol above).  Idle time is real time, also under --seed. */
static void sleep_idle(struct fz_carrier *c)
{
    c->stats.idle_sleeps++;
    uint64_t slept = fz_real_now_ns(); /* for busy % (fiberize stats) */
    if (fz_driver_acquire())
        sleep_in_driver(c);
    else
        sleep_on_futex(c);
    c->stats.idle_ns += fz_real_now_ns() - slept;
}

/* --seed, nothing runnable: in this order, a pool call's return (the
 * oldest first), the next timer (the virtual clock jumps to it), input
 * from outside (the carrier sleeps in epoll), else no thread can ever run
 * again: a deadlock, reported. */
static void det_idle(struct fz_carrier *c)
{
    struct fz_fiber *f = find_work(c);
    bool wait_pool = false;
    if (!f && fz_det_admit(&wait_pool))
        f = find_work(c);
    if (f) {
        run_from_idle(c, f);
        return;
    }
    if (atomic_load(&fz_rt.pending_interrupts)) {
        handle_interrupts();
        return;
    }
    uint64_t next = fz_driver_next_deadline();
    if (wait_pool) {
        /* A call out in the pool comes back first -- a quick one (fsync)
         * always does, so replays stay exact -- but one that waits for
         * another thread (a file lock) must not stop the clock. */
        if (fz_det_wait_arrival(DET_POOL_PATIENCE_NS))
            return;
        if (next != UINT64_MAX) {
            fz_det_saw_outside("a blocking-pool call still out when a timer was due");
            fz_det_advance_to(next);
        } else {
            poll_fds_now(c); /* fds may wake a thread meanwhile */
        }
        return;
    }
    if (next != UINT64_MAX) {
        fz_det_advance_to(next);
        return;
    }
    if (!fz_det_outside_can_wake()) {
        /* A thread that is not a fiber (glibc's timer threads) may still
         * release what they wait for: give it a moment, then report. */
        if (fz_det_wait_arrival(DET_DEADLOCK_GRACE_NS) || atomic_load(&fz_rt.pending_interrupts)) {
            fz_det_saw_outside("a wake-up from a thread that is not a fiber");
            return;
        }
        load_own_tcb(c); /* the report uses libc: not on a parked fiber's TLS */
        fz_det_deadlock();
    }
    /* sleep until something arrives: notify_idle or the driver's eventfd
     * ends it, and so does a signal handler */
    idle_push(c);
    uint64_t wakes = c->stats.wakes;
    sleep_idle(c);
    if (c->stats.wakes != wakes || atomic_load(&fz_rt.pending_interrupts))
        fz_det_saw_outside("an fd or a signal woke a thread while every thread waited");
}

/* ---- shrinking back to one OS thread ------------------------------------
 *
 * Natively a program that has joined all its threads is one thread again:
 * /proc/self/status says "Threads: 1", unshare(CLONE_NEWUSER) and setns
 * into a user or mount namespace work, fork copies one thread's worth and
 * shoots down no other CPU's TLB, and Python's os.fork() does not warn.
 * Here the carriers and the monitor would stay.  So before such a call,
 * the main fiber, the only one left, asks the runtime to shrink:
 *  1. it sets `shrinking`, wakes every idle carrier (fz_sched_kick_idle)
 *     and parks;
 *  2. each carrier but 0, at its next idle point (with nothing to run:
 *     the only fiber is parked), marks itself `left` and returns from its
 *     thread function; a retired spare is woken to do the same;
 *  3. carrier 0 makes the monitor leave, waits for every other thread to
 *     have left, puts the scheduler back in its before-the-first-thread
 *     state (carriers_later) and wakes the main fiber, which only it can
 *     run now;
 *  4. the main fiber, back on the main thread's OS thread, joins them all
 *     and unmaps their stacks.
 * The next pthread_create starts the carriers and the monitor again
 * (start_carriers_later).  Not at every join: a program that starts and
 * joins threads in a loop would pay two thread starts for each.
 * Rejected: shrinking from the monitor after an idle spell -- only the
 * main fiber knows the moment matters, and moving it to carrier 0 needs
 * it parked at a point of its own choosing. */

/* A carrier other than 0, idle, shrinking: off the idle list, its own TCB
 * loaded for libc's thread exit, every signal but libc's blocked so that
 * none directed at the process picks this thread while it goes. */
static void leave_scheduler(struct fz_carrier *c)
{
    FZ_ASSERT(c->index != 0 && !c->current);
    idle_remove(c);
    load_own_tcb(c);
    uint64_t all = ~0ull & ~FZ_LIBC_SIGNALS;
    fz_sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8);
    c->kernel_mask = all;
    atomic_store(&c->left, 1);
    fz_futex_wake(&c->left, 1);
}

/* Carrier 0, idle, shrinking (step 3 above). */
static void shrink_coordinate(struct fz_carrier *c0)
{
    fz_monitor_leave(); /* from here on nobody starts a spare */
    /* the monitor's view of this slot, now that it is gone: the next
     * monitor starts from fz_rt.stuck 0 and must not count c0 stuck */
    c0->stuck = FZ_NOT_STUCK;
    c0->seen_since = 0;
    unsigned n = atomic_load(&fz_rt.ncarriers);
    for (unsigned i = 1; i < n; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        if (c->no_thread)
            continue; /* a spare slot whose thread never started */
        if (atomic_load(&c->retired)) {
            atomic_store(&c->retire_word, 0);
            fz_futex_wake(&c->retire_word, 1);
        }
        while (!atomic_load(&c->left))
            fz_futex_wait(&c->left, 0, NULL);
    }
    fz_spin_lock(&fz_rt.idle_lock);
    fz_rt.offer_from = NULL;
    fz_spin_unlock(&fz_rt.idle_lock);
    atomic_store(&fz_rt.stuck, 0);
    atomic_store(&fz_rt.spares_running, 0);
    shrunk_slots = n;
    fz_rt.carriers_later = fz_rt.target;
    fz_rt.target = 1;
    atomic_store(&fz_rt.ncarriers, 1);
    atomic_store(&shrinking, 0);
    struct fz_waiter *w = shrink_waiter;
    shrink_waiter = NULL;
    if (fz_waiter_claim(w, FZ_WAKE_NOTIFIED))
        fz_waiter_finish_wake_on(c0, w);
}

/* A slot whose thread was joined, as a fresh one (alloc_carriers) but for
 * its counters and its cache of fiber stacks. */
static void reset_slot(struct fz_carrier *c, unsigned index)
{
    struct fz_stats stats = c->stats;
    struct fz_stack_cache stacks = c->stacks;
    memset(c, 0, sizeof *c);
    fz_carrier_init(c, index);
    c->stats = stats;
    c->stacks = stacks;
}

bool fz_sched_shrink(void)
{
    struct fz_fiber *self = fz_self();
    if (!fz_rt.active || fz_det_on || fz_rt.carriers_later || !self || self != fz_rt.main_fiber ||
        atomic_load(&fz_rt.live_fibers) != 1 || fz_in_signal_handler())
        return false;
    if (!fz_pool_retire_all()) /* pool threads are OS threads of ours too */
        return false;
    struct fz_waiter w;
    fz_waiter_init(&w, 0, FZ_INTR_NONE);
    shrink_waiter = &w;
    atomic_store(&shrinking, 1);
    fz_sched_kick_idle();
    fz_waiter_block(&w);
    FZ_ASSERT(self->carrier == &fz_rt.carriers[0]);
    fz_monitor_join();
    for (unsigned i = 1; i < shrunk_slots; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        if (atomic_load(&c->left))
            fz_os_thread_join_lasting(c->thread);
        reset_slot(c, i); /* a spare's too: add_spare makes it one again */
    }
    return true;
}

/* Returns only on a carrier other than 0 that leaves for good (shrinking),
 * on its own OS thread's TCB, whose function then returns. */
static void idle_loop(struct fz_carrier *c)
{
    bool woken = false; /* just left a sleep: search before the next one */
    for (;;) {
        reap_dead(c); /* the idle context may start fresh after an exit */
        fz_altstack_idle(c);
        fz_affinity_idle(c);
        if (c->handoff) {
            struct fz_fiber *next = c->handoff;
            c->handoff = NULL;
            run_from_idle(c, next);
            continue;
        }
        if (atomic_load(&shrinking)) { /* no fiber but the parked main one */
            if (c->index != 0) {
                leave_scheduler(c);
                return;
            }
            shrink_coordinate(c);
            continue;
        }
        uint64_t idle_mask = atomic_load_explicit(&fz_rt.blocked_by_all, memory_order_relaxed);
        if (c->kernel_mask != idle_mask)
            fz_sigmask_load(c, idle_mask);
        if (c->spare && spare_should_retire()) {
            spare_retire(c);
            continue;
        }
        if (fz_det_on) {
            det_idle(c);
            continue;
        }
        struct fz_fiber *f = find_work(c);
        if (!f && fz_timers_due()) {
            fz_timers_fire(c);
            f = find_work(c);
        }
        if (f) {
            run_from_idle(c, f);
            continue;
        }
        if (atomic_load(&fz_rt.pending_interrupts)) {
            handle_interrupts();
            continue;
        }
        if (woken) {
            woken = false;
            if ((f = search(c))) {
                run_from_idle(c, f);
                continue;
            }
        }
        /* Its fiber parked on an fd and another carrier sleeps in epoll: an
         * fd that became ready meanwhile (the pipe the fiber just wrote to)
         * is taken here, not by waking that carrier -- a cross-CPU wake-up
         * per message in a ping-pong otherwise.  Edge-triggered events go
         * to one poller.  Other parks (locks) skip the system call. */
        if (c->fd_parked && fz_driver_sleeping()) {
            c->fd_parked = false;
            fz_driver_peek(c);
            if ((f = find_work(c))) {
                run_from_idle(c, f);
                continue;
            }
        }
        idle_push(c);
        atomic_thread_fence(memory_order_seq_cst);
        f = find_work(c);
        if (!f && atomic_load(&shrinking)) { /* set before fz_sched_kick_idle read the list */
            idle_remove(c);
            continue;
        }
        if (!f)
            f = last_look(c);
        if (f) {
            idle_remove(c);
            run_from_idle(c, f);
            continue;
        }
        sleep_idle(c);
        woken = true;
    }
}

/* ---- start-up -------------------------------------------------------- */

static void *carrier_thread(void *arg)
{
    struct fz_carrier *c = arg;
    c->own_tcb = c->loaded_tcb = fz_thread_pointer();
    c->tid = (pid_t)fz_sys0(SYS_gettid);
    fz_asan_carrier_adopt(c, NULL);
    idle_loop(c);
    return NULL;
}

static void carrier0_idle_entry(void *arg)
{
    idle_arrived(arg);
    idle_loop(arg);
    fz_throw("carrier 0 left its idle loop", __FILE__, __LINE__);
}

/* Start-up and a fork child both adopt the calling OS thread as carrier 0,
 * running m as the main fiber. */
static bool adopt_carrier0(struct fz_fiber *m, const char **why)
{
    struct fz_carrier *c0 = &fz_rt.carriers[0];
    c0->own_tcb = fz_tls_create(NULL);
    if (!c0->own_tcb)
        return *why = "out of memory", false;
    if (fz_stack_alloc(NULL, IDLE_STACK_SIZE, 4096, &c0->idle_stack))
        return *why = "cannot map the idle stack", false;
    /* Only this carrier's idle loop writes it, and a fork child that needs
     * one maps its own here: its pages are the parent's alone, or the idle
     * loop that follows each fork would copy them back (runtime/osthread.c
     * does the same for the other runtime threads). */
    fz_stack_wipe_on_fork(&c0->idle_stack);
    c0->idle_sp = fz_ctx_prepare(&c0->idle_stack, carrier0_idle_entry, c0);
    fz_asan_carrier_adopt(c0, &c0->idle_stack);
    c0->loaded_tcb = m->tcb;
    c0->tid = (pid_t)fz_sys0(SYS_gettid);
    c0->altstack = m->altstack;
    m->carrier = c0;
    m->state = FZ_FIBER_RUNNING;
    atomic_store(&m->on_cpu, 1);
    c0->current = m;
    fz_rt.main_fiber = m;
    return true;
}

static void start_carriers(unsigned n);

/* The main fiber, with signal mask `mask`, is the only live one: turn the
 * runtime on and start the other n - 1 carriers -- or, with `later`, when
 * the first thread is created (fz_spawn). */
static void go_live(struct fz_fiber *m, uint64_t mask, unsigned n, bool later)
{
    fz_sigmask_fiber_born(m, mask);
    atomic_store(&fz_rt.live_fibers, 1);
    fz_rt.pid = (pid_t)fz_sys0(SYS_getpid);
    fz_rt.active = true;
    fz_tls_threads_started();
    if (later) { /* n may be 1: the monitor waits too */
        fz_rt.carriers_later = n;
        fz_rt.target = 1;
        atomic_store(&fz_rt.ncarriers, 1);
        return;
    }
    start_carriers(n);
}

/* Drop the counts of handlers that ran (handle_interrupts). */
static void forget_interrupts(void)
{
    atomic_store(&fz_rt.pending_interrupts, 0);
    for (int sig = 0; sig <= 64; sig++) {
        atomic_store(&fz_rt.pending_signal[0][sig], 0);
        atomic_store(&fz_rt.pending_signal[1][sig], 0);
    }
}

/* The first thread of the process (or of a fork child): now it needs its
 * carriers (and the monitor, which only ever watches carriers running
 * fibers). */
static void start_carriers_later(void)
{
    unsigned n = fz_rt.carriers_later;
    /* The handlers that ran so far ran on main, the only fiber, which is
     * running now (it creates this thread): the real calls of its that
     * they interrupted, the kernel ended itself (syscalls/hook.h), and no
     * wait of its is left to end.  Their counts must not end a wait of
     * the new thread's (pool_wait: EINTR with no handler run). */
    forget_interrupts();
    fz_rt.carriers_later = 0;
    fz_rt.target = n;
    atomic_store(&fz_rt.ncarriers, n);
    start_carriers(n);
}

void fz_carrier_init(struct fz_carrier *c, unsigned index)
{
    c->index = index;
    c->rng = 0x9e3779b9u * (index + 1);
    c->kernel_mask = ~0ull;                          /* unknown: loaded before anything runs */
    c->altstack = (stack_t){.ss_flags = SS_DISABLE}; /* what a new OS thread has */
    fz_runq_init(&c->runq);
}

bool fz_sched_start_carrier(struct fz_carrier *c)
{
    return fz_os_thread_start_lasting(&c->thread, carrier_thread, c) == 0;
}

static bool alloc_carriers(unsigned n)
{
    /* Slots for spares are mapped now and touched only when used. */
    size_t bytes = sizeof(struct fz_carrier) * (n + FZ_MAX_SPARES);
    void *slots = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED)
        return false;
    fz_rt.carriers = slots;
    fz_rt.capacity = n + FZ_MAX_SPARES;
    fz_rt.target = n;
    for (unsigned i = 0; i < n; i++)
        fz_carrier_init(&fz_rt.carriers[i], i);
    atomic_store(&fz_rt.ncarriers, n);
    return true;
}

static void start_carriers(unsigned n)
{
    for (unsigned i = 1; i < n; i++) {
        if (!fz_sched_start_carrier(&fz_rt.carriers[i])) {
            /* run with the carriers we have */
            atomic_store(&fz_rt.ncarriers, i);
            fz_rt.target = i;
            break;
        }
    }
    fz_monitor_start();
}

bool fz_sched_start(unsigned n, const char **why)
{
    fz_inject_init(&fz_rt.inject);
    if (!alloc_carriers(n))
        return *why = "out of memory", false;
    struct fz_fiber *m = fz_fiber_adopt_main();
    if (!m)
        return *why = "cannot describe the main thread", false;
    if (!adopt_carrier0(m, why))
        return false;
    /* A program is one thread until it creates one: until then the other
     * carriers and the monitor have nothing to run or watch, yet their
     * OS threads make every fork and exit of a single-threaded program
     * slower than natively (the kernel shoots down TLBs on the CPUs they
     * sit on: on a 2-core VM fork took 580 us instead of 180) ... */
    go_live(m, fz_sigmask_current_kernel(), n, true);
    /* ... and libc may take its single-threaded paths again (fork, malloc,
     * cancellable system calls), which libfiberize's own start-up thread
     * turned off (runtime/libc_glibc.c's probe) */
    fz_tls_alone();
    return true;
}

/* The child of a fork is a process whose only thread is the fiber that
 * forked: it becomes the main fiber of a runtime built afresh on the
 * calling OS thread (carrier 0).  Nothing of the parent's carriers,
 * queues or waiters survives; their memory is simply left behind. */
bool fz_sched_after_fork(struct fz_fiber *self)
{
    /* what FIBERIZE_WORKERS asked for, started or not (a child's child) */
    unsigned n = fz_rt.carriers_later ? fz_rt.carriers_later : fz_rt.target;
    fz_rt.carriers_later = 0;
    /* The thread's mask now: the fiber's when it forked, or what the child
     * set since with the real sigprocmask while the runtime was off. */
    uint64_t mask = fz_sigmask_current_kernel();
    fz_rt.active = false;
    fz_inject_init(&fz_rt.inject);
    fz_rt.idle_lock = (fz_spinlock){0};
    fz_rt.idle_head = NULL;
    atomic_store(&fz_rt.num_idle, 0);
    atomic_store(&fz_rt.num_searching, 0);
    fz_rt.offer_from = NULL;
    atomic_store(&fz_rt.stuck, 0);
    atomic_store(&fz_rt.spares_running, 0);
    atomic_store(&fz_rt.monitor_asleep, 0);
    atomic_store(&fz_rt.main_exited, false);
    forget_interrupts();
    for (int sig = 0; sig <= 64; sig++)
        fz_rt.unblocked_by[sig] = 0;
    fz_rt.mask_lock = (fz_spinlock){0};
    atomic_store(&fz_rt.blocked_by_all, 0);
    if (fz_det_on)
        fz_det_after_fork();
    fz_monitor_after_fork();
    const char *why;
    if (!alloc_carriers(n) || !adopt_carrier0(self, &why))
        return false;
    fz_rt.carriers[0].kernel_mask = mask; /* this thread's */
    /* Most fork children exec or exit without a thread: their carriers
     * would only make the fork and the exit slower (each is an OS thread
     * that exit_group must take down: issue 17's waitpid figure). */
    go_live(self, mask, n, true);
    return true;
}

bool (*fz_fork_rebuild)(struct fz_fiber *self);

/* Only the forking fiber's own thread rebuilds: a thread the child started
 * natively meanwhile (glibc's timer threads) has a TCB of its own, and the
 * runtime, built around the fiber, would adopt the wrong OS thread. */
bool fz_sched_fork_resume_slow(void)
{
    struct fz_fiber *f = fz_rt.fork_pending;
    FZ_ASSERT(!f || !fz_rt.active); /* pending: the runtime is off */
    if (!f || fz_tls_current_fiber() != f || !fz_fork_rebuild)
        return fz_rt.active;
    fz_rt.fork_pending = NULL;
    return fz_fork_rebuild(f);
}
