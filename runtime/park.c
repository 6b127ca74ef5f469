/* Waiters and the parking lot (see park.h for the protocol).
 *
 * Parking lot: 1024 buckets of FIFO wait queues, each under its own
 * spinlock, keyed by address hash.  A waiter is linked in a bucket only
 * between fz_park_addr's validation and its return; the only code that
 * touches a linked waiter holds the bucket lock.  A waker claims a waiter
 * and unlinks it under the lock, and makes it run after dropping the lock.
 * A waiter woken by another source (timeout, interrupt) unlinks itself.
 *
 * Interrupts: a signal handler that ran without SA_RESTART makes one
 * blocked interruptible wait return EINTR.  Handlers never wake a wait
 * directly (they only count, see syscalls/signal.c) and mark the
 * interrupted fiber's call window (one CAS on its intr_window word, park.h
 * fz_call_begin); the scheduler calls fz_interrupt_one, which finds the
 * wait through the fiber's published `wait` (under the fiber's lock), and
 * a park in a marked window does not happen.  Rejected: a list of the
 * interruptible waits, linked at every park -- one process-wide list was
 * the runtime's busiest lock at 10,000 connections, and per-carrier lists
 * still made every unlink write a neighbour's waiter, a cold line on
 * another fiber's stack; the rare signal walking every fiber costs less.
 * Threads that are not fibers sleep in futex(2) and are interrupted by the
 * kernel (block_os_thread).
 */
#include <errno.h>
#include <stdint.h>
#include "runtime/assert.h"
#include "runtime/driver.h"
#include "runtime/fiber.h"
#include "runtime/identity.h"
#include "runtime/park.h"
#include "runtime/tls.h"
#include "runtime/sched.h"
#include "runtime/sigthread.h"
#include "runtime/sys.h"

#define BUCKETS 1024

struct bucket {
    fz_spinlock lock;
    struct fz_waiter *head, *tail;
} __attribute__((aligned(FZ_CACHE_LINE)));
/* One bucket per cache line: carriers locking neighbouring buckets do not
 * contend for the line. */
_Static_assert(sizeof(struct bucket) == FZ_CACHE_LINE, "a bucket per cache line");

/* page-aligned: a fork child swaps its pages for fresh ones (fz_zero_table) */
static struct bucket buckets[BUCKETS] __attribute__((aligned(4096)));

/* ---- waiters --------------------------------------------------------- */

void fz_waiter_init(struct fz_waiter *w, uint64_t deadline, int interruptible)
{
    w->fiber = fz_self();
    atomic_init(&w->claimed, 0);
    w->reason = FZ_WAKE_NONE;
    atomic_init(&w->futex_word, 0);
    w->deadline = deadline;
    w->interruptible = interruptible & 3;
    w->cancelable =
        w->fiber && interruptible != FZ_INTR_NONE && !(interruptible & FZ_INTR_NOCANCEL);
    w->queued = false;
    w->addr = NULL;
    w->bits = ~0u;
    w->kind = FZ_WAIT_PLAIN;
    w->timer.armed = false;
}

bool fz_waiter_claim(struct fz_waiter *w, int reason)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&w->claimed, &expected, 1))
        return false;
    w->reason = reason;
    return true;
}

void fz_waiter_finish_wake_on(struct fz_carrier *c, struct fz_waiter *w)
{
    /* Finished once, by the source that claimed it: claimed goes 1 -> 2
     * (checked builds only; every reader treats claimed as a bool). */
    if (FZ_CHECKS) {
        int was = atomic_exchange(&w->claimed, 2);
        FZ_ASSERT(was == 1);
    }
    struct fz_fiber *f = w->fiber;
    if (f) {
        fz_unpark_on(c, f);
        return;
    }
    atomic_store(&w->futex_word, 1);
    fz_futex_wake(&w->futex_word, 1);
}

void fz_waiter_finish_wake(struct fz_waiter *w)
{
    fz_waiter_finish_wake_on(NULL, w);
}

bool fz_waiter_wake(struct fz_waiter *w, int reason)
{
    if (!fz_waiter_claim(w, reason))
        return false;
    fz_waiter_finish_wake(w);
    return true;
}

/* Bits of a fiber's intr_window word (written by the fiber itself, marked
 * by signal wrappers with a CAS, cleared by whoever consumes the mark). */
#define WINDOW_LEVEL 3u /* FZ_INTR_NORESTART or _ALWAYS: a window is open */
#define WINDOW_HIT 4u   /* a handler ended the call: the park reports EINTR */

static unsigned window_open(struct fz_fiber *self, int interruptible)
{
    if (!self || (atomic_load(&self->intr_window) & WINDOW_LEVEL))
        return 0; /* not a fiber, or inside an outer call's window */
    atomic_store(&self->intr_window, (unsigned)interruptible & WINDOW_LEVEL);
    return 1;
}

static void window_close(struct fz_fiber *self, unsigned token)
{
    if (token)
        atomic_store(&self->intr_window, 0); /* an unconsumed mark goes too */
}

unsigned fz_call_begin(int interruptible)
{
    struct fz_fiber *self = fz_self();
    if (fz_det_on && self) /* every interruptible call is a scheduling point */
        fz_sched_point(self);
    return window_open(self, interruptible);
}

void fz_call_end(unsigned token)
{
    struct fz_fiber *self = fz_self();
    if (token)
        window_close(self, token);
    /* A signal the call's own system call raised inside the runtime
     * (SIGPIPE, syscalls/signal.c) runs now, before the call returns, as
     * the kernel runs it at that system call's exit. */
    if (self && fz_sigthread_deliverable(self))
        fz_sigthread_deliver_own(self);
}

bool fz_interrupt_mark(struct fz_fiber *f, bool restart)
{
    unsigned cur = atomic_load(&f->intr_window);
    for (;;) {
        unsigned level = cur & WINDOW_LEVEL;
        if (!level || (restart && level != FZ_INTR_ALWAYS))
            return false; /* not in a call, or one the handler restarts */
        if (cur & WINDOW_HIT)
            return true;
        if (atomic_compare_exchange_weak(&f->intr_window, &cur, cur | WINDOW_HIT))
            return true;
    }
}

bool fz_main_takes(int sig)
{
    struct fz_fiber *m = fz_rt.main_fiber;
    return m && !atomic_load(&fz_rt.main_exited) && !(m->sigmask & fz_sig_bit(sig));
}

void fz_interrupt_note(int sig, bool restart)
{
    if (fz_main_takes(sig))
        fz_interrupt_mark(fz_rt.main_fiber, restart);
}

/* f's wait if a handler may end it: published, interruptible, unclaimed.
 * Caller holds f->lock (wait_withdraw takes it before the frame goes). */
static struct fz_waiter *interruptible_wait(struct fz_fiber *f)
{
    struct fz_waiter *w = f->wait;
    return w && w->interruptible && !atomic_load(&w->claimed) ? w : NULL;
}

/* The mark is set before this runs, and wait_publish reads it under the
 * same lock this takes, so a marked call's wait is ended either here or
 * by its own publish, never by neither. */
void fz_interrupt_marked(struct fz_fiber *f)
{
    if (!(atomic_load(&f->intr_window) & WINDOW_HIT))
        return; /* not marked, or its park consumed the mark */
    fz_spin_lock(&f->lock);
    struct fz_waiter *w = interruptible_wait(f);
    bool won = w && fz_waiter_claim(w, FZ_WAKE_INTERRUPT);
    if (won)
        atomic_fetch_and(&f->intr_window, ~WINDOW_HIT);
    fz_spin_unlock(&f->lock);
    if (won)
        fz_waiter_finish_wake(w);
}

struct oldest_wait {
    uint64_t bit; /* the signal's mask bit */
    struct fz_fiber *fiber;
    struct fz_waiter *wait; /* only compared once its fiber's lock is dropped */
    uint64_t since;         /* its since, copied: the frame may be gone */
};

static void note_if_older(struct fz_fiber *f, void *arg)
{
    struct oldest_wait *o = arg;
    if (!__atomic_load_n(&f->wait, __ATOMIC_RELAXED) || (f->sigmask & o->bit))
        return; /* not waiting (the lock would say the same), or blocks it */
    fz_spin_lock(&f->lock);
    struct fz_waiter *w = interruptible_wait(f);
    if (w && (!o->wait || w->since < o->since)) {
        o->fiber = f;
        o->wait = w;
        o->since = w->since;
    }
    fz_spin_unlock(&f->lock);
}

/* The main fiber's call was marked by the wrapper when the handler ran
 * (fz_interrupt_note), so a signal that came while it ran its own code
 * ends none of its later waits.  Once main has exited or when it blocks
 * the signal, the longest-waiting fiber's wait that does not block it
 * ends (by a coarse clock: of equal ones, the first the thread-id table
 * yields).  A handler with SA_RESTART interrupts only waits that are
 * never restarted. */
void fz_interrupt_one(int sig, bool restart)
{
    if (fz_main_takes(sig)) {
        fz_interrupt_marked(fz_rt.main_fiber);
        return;
    }
    /* the oldest may wake before it is claimed: then look again */
    for (int tries = 0; tries < 4; tries++) {
        struct oldest_wait o = {fz_sig_bit(sig), NULL, NULL, 0};
        fz_ident_each(note_if_older, &o);
        if (!o.fiber)
            return;
        fz_spin_lock(&o.fiber->lock);
        struct fz_waiter *w = interruptible_wait(o.fiber);
        bool same = w == o.wait; /* o.wait is only compared: it may be gone */
        if (same && restart && w->interruptible != FZ_INTR_ALWAYS) {
            fz_spin_unlock(&o.fiber->lock);
            return; /* the handler restarts it: no wait ends */
        }
        bool won = same && fz_waiter_claim(w, FZ_WAKE_INTERRUPT);
        fz_spin_unlock(&o.fiber->lock);
        if (won) {
            fz_waiter_finish_wake(w);
            return;
        }
    }
}

/* An OS thread sleeps in the kernel, so signals reach it as natively: a
 * handler ends futex(2) with EINTR -- any handler if the wait has a time
 * limit, only one without SA_RESTART if not (the kernel restarts it).  So a
 * wait any handler must end (FZ_INTR_ALWAYS) always gets a limit, a far
 * one when the caller gave none. */
#define FAR_NS (3600ull * 1000000000ull)

static int block_os_thread(struct fz_waiter *w)
{
    bool timed = w->deadline != 0;
    bool interruptible = w->interruptible != FZ_INTR_NONE;
    while (!atomic_load(&w->futex_word)) {
        bool far = !timed && w->interruptible == FZ_INTR_ALWAYS;
        struct timespec ts =
            fz_ns_to_ts(timed ? fz_kernel_deadline(w->deadline) : fz_real_now_ns() + FAR_NS);
        long r = fz_futex_wait(&w->futex_word, 0, timed || far ? &ts : NULL);
        if (r == -ETIMEDOUT && timed) {
            if (fz_waiter_claim(w, FZ_WAKE_TIMEOUT))
                return FZ_WAKE_TIMEOUT;
            timed = false; /* the winner is about to set futex_word */
        } else if (r == -EINTR && interruptible) {
            if (fz_waiter_claim(w, FZ_WAKE_INTERRUPT))
                return FZ_WAKE_INTERRUPT;
            interruptible = false;
        }
    }
    return w->reason;
}

/* pthread_cancel (fz_cancel_wake) and signals sent to the fiber
 * (fz_wait_signal) find its wait here, under the fiber's lock, so they
 * never touch a waiter whose frame is gone.  A cancellation already
 * requested ends the wait at once. */
/* A wait of self ended and is torn down: signals sent to it run now. */
void fz_wait_over(struct fz_fiber *self)
{
    if (self && fz_sigthread_deliverable(self))
        fz_sigthread_deliver_own(self);
}

static struct fz_waiter *wait_publish(struct fz_fiber *self, struct fz_waiter *w, bool *marked)
{
    fz_spin_lock(&self->lock);
    struct fz_waiter *outer = self->wait;
    self->wait = w;
    if (w->cancelable)
        self->cancel_waiter = w;
    /* under the lock fz_interrupt_marked takes: see there */
    *marked = w->interruptible && (atomic_load(&self->intr_window) & WINDOW_HIT);
    fz_spin_unlock(&self->lock);
    if (w->cancelable && fz_tcb_cancel_pending(self->tcb) && fz_waiter_claim(w, FZ_WAKE_INTERRUPT))
        fz_waiter_finish_wake(w);
    /* a signal sent to it that its sigwait takes came before the wait was
     * published (the fence pairs with the sender's, sigthread.c) */
    atomic_thread_fence(memory_order_seq_cst);
    if (w->interruptible && (atomic_load(&self->sigwait_set) & atomic_load(&self->sig_pending)) &&
        fz_waiter_claim(w, FZ_WAKE_INTERRUPT))
        fz_waiter_finish_wake(w);
    else if (w->interruptible)
        fz_sigthread_wait_published(self);
    return outer;
}

static void wait_withdraw(struct fz_fiber *self, struct fz_waiter *w, struct fz_waiter *outer)
{
    fz_spin_lock(&self->lock);
    self->wait = outer;
    if (w->cancelable)
        self->cancel_waiter = NULL;
    fz_spin_unlock(&self->lock);
}

/* The wait ends either way; its owner runs the handler once the wait is
 * torn down (so a handler that longjmps leaves nothing registered), then
 * returns EINTR or, for FZ_WAKE_RESTART, waits again as the kernel
 * restarts a call. */
void fz_wait_signal(struct fz_fiber *f, int restart)
{
    fz_spin_lock(&f->lock);
    struct fz_waiter *w = f->wait;
    bool intr = w && restart >= 0 &&
                (w->interruptible == FZ_INTR_ALWAYS || (w->interruptible && restart != 1));
    bool won = w && fz_waiter_claim(w, intr ? FZ_WAKE_INTERRUPT : FZ_WAKE_RESTART);
    fz_spin_unlock(&f->lock);
    if (won) /* claimed by us: it stays parked until this unpark */
        fz_waiter_finish_wake(w);
}

void fz_cancel_wake(struct fz_fiber *f)
{
    fz_spin_lock(&f->lock);
    struct fz_waiter *w = f->cancel_waiter;
    bool won = w && fz_waiter_claim(w, FZ_WAKE_INTERRUPT);
    fz_spin_unlock(&f->lock);
    if (won)
        fz_waiter_finish_wake(w);
}

int fz_waiter_block(struct fz_waiter *w)
{
    struct fz_fiber *self = w->fiber;
    if (!self)
        return block_os_thread(w);
    unsigned window = 0;
    if (w->interruptible)
        window = window_open(self, w->interruptible); /* a wait outside any call */
    /* The clock's code is not the runtime's: a signal landing in it waits
     * (fz_clock_on).  Read after the window is open all the same -- when
     * it was read before and a handler ran there, the mark that handler
     * left found no window, and sig_stw's sigsuspend parked for a signal
     * that had come and gone (one of sig_stw's hangs on two carriers, 10
     * in 150 runs for all causes together). */
    uint64_t now = fz_clock_on(self->carrier, true);
    w->since = now;
    bool marked;
    struct fz_waiter *outer = wait_publish(self, w, &marked);
    if (marked && fz_waiter_claim(w, FZ_WAKE_INTERRUPT)) {
        /* a handler ended the call before it parked */
        atomic_fetch_and(&self->intr_window, ~WINDOW_HIT);
        wait_withdraw(self, w, outer);
        window_close(self, window);
        return FZ_WAKE_INTERRUPT;
    }
    /* a waiter blocks, and arms its timer, on its owner's fiber only */
    FZ_ASSERT(self == fz_self());
    if (w->deadline) {
        w->timer.deadline = w->deadline;
        w->timer.owner = w;
        fz_timer_arm(&w->timer, self->carrier);
    }
    /* for dumps: two plain stores, no string built; and the carrier's count */
    struct fz_stats *st = &self->carrier->stats;
    if (w->kind == FZ_WAIT_FD)
        st->parks_fd++;
    else if (w->addr)
        st->parks_addr++;
    else
        st->parks_sleep++;
    self->waiter = w;
    self->parked_at = now;
    fz_park(self);
    self->waiter = NULL;
    if (w->deadline)
        fz_timer_disarm(&w->timer, self->carrier);
    wait_withdraw(self, w, outer);
    window_close(self, window);
    return w->reason;
}

int fz_sleep_until(uint64_t deadline, int interruptible)
{
    int reason;
    do {
        struct fz_waiter w;
        fz_waiter_init(&w, deadline ? deadline : 1, interruptible);
        reason = fz_waiter_block(&w);
        fz_wait_over(w.fiber);
    } while (reason == FZ_WAKE_RESTART);
    return reason;
}

/* ---- parking lot ----------------------------------------------------- */

static struct bucket *bucket_of(const void *addr)
{
    uint64_t h = (uint64_t)(uintptr_t)addr * 0x9e3779b97f4a7c15ull;
    return &buckets[h >> (64 - 10)];
}

static void enqueue(struct bucket *b, struct fz_waiter *w)
{
    FZ_ASSERT(fz_spin_held(&b->lock));
    w->next = NULL;
    w->prev = b->tail;
    if (b->tail)
        b->tail->next = w;
    else
        b->head = w;
    b->tail = w;
    w->queued = true;
}

static void dequeue(struct bucket *b, struct fz_waiter *w)
{
    FZ_ASSERT(fz_spin_held(&b->lock) && w->queued);
    if (w->prev)
        w->prev->next = w->next;
    else
        b->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        b->tail = w->prev;
    w->queued = false;
}

/* A requeue may have moved w to another address's bucket meanwhile. */
static void unlink_self(struct fz_waiter *w)
{
    for (;;) {
        struct bucket *b = bucket_of(w->addr);
        fz_spin_lock(&b->lock);
        if (bucket_of(w->addr) == b) {
            if (w->queued)
                dequeue(b, w);
            fz_spin_unlock(&b->lock);
            return;
        }
        fz_spin_unlock(&b->lock);
    }
}

int fz_park_addr(const void *addr, uint32_t bits, bool (*validate)(void *), void *ctx,
                 uint64_t deadline, int interruptible)
{
again:;
    struct fz_waiter w;
    fz_waiter_init(&w, deadline, interruptible);
    w.addr = addr;
    w.bits = bits;
    struct bucket *b = bucket_of(addr);
    fz_spin_lock(&b->lock);
    if (validate && !validate(ctx)) {
        fz_spin_unlock(&b->lock);
        return EAGAIN;
    }
    enqueue(b, &w);
    fz_spin_unlock(&b->lock);
    int reason = fz_waiter_block(&w);
    if (reason != FZ_WAKE_NOTIFIED)
        unlink_self(&w);
    fz_wait_over(w.fiber);
    if (reason == FZ_WAKE_RESTART)
        goto again; /* validate decides afresh: a wake meanwhile is not lost */
    switch (reason) {
    case FZ_WAKE_TIMEOUT:
        return ETIMEDOUT;
    case FZ_WAKE_INTERRUPT:
        return EINTR;
    default:
        return 0;
    }
}

/* Claim and unlink up to max matching waiters; returns them in a list
 * (through ->next) to be woken after the lock is dropped. */
static struct fz_waiter *take_waiters(struct bucket *b, const void *addr, uint32_t bits,
                                      unsigned max, unsigned *count)
{
    struct fz_waiter *first = NULL, **tail = &first;
    unsigned n = 0;
    for (struct fz_waiter *w = b->head, *next; w && n < max; w = next) {
        next = w->next;
        if (w->addr != addr || !(w->bits & bits))
            continue;
        if (!fz_waiter_claim(w, FZ_WAKE_NOTIFIED))
            continue; /* timed out or interrupted: it unlinks itself */
        dequeue(b, w);
        w->next = NULL;
        *tail = w;
        tail = &w->next;
        n++;
    }
    *count = n;
    return first;
}

static void wake_list(struct fz_carrier *c, struct fz_waiter *w)
{
    while (w) {
        struct fz_waiter *next = w->next; /* w may be gone once woken */
        fz_waiter_finish_wake_on(c, w);
        w = next;
    }
}

unsigned fz_unpark_addr_on(struct fz_carrier *c, const void *addr, uint32_t bits, unsigned max)
{
    struct bucket *b = bucket_of(addr);
    unsigned n;
    fz_spin_lock(&b->lock);
    struct fz_waiter *list = take_waiters(b, addr, bits, max, &n);
    fz_spin_unlock(&b->lock);
    wake_list(c, list);
    return n;
}

unsigned fz_unpark_addr(const void *addr, uint32_t bits, unsigned max)
{
    return fz_unpark_addr_on(NULL, addr, bits, max);
}

/* Lock two buckets in address order so requeues cannot deadlock. */
static void lock_pair(struct bucket *a, struct bucket *b)
{
    if (a == b) {
        fz_spin_lock(&a->lock);
    } else if (a < b) {
        fz_spin_lock(&a->lock);
        fz_spin_lock(&b->lock);
    } else {
        fz_spin_lock(&b->lock);
        fz_spin_lock(&a->lock);
    }
}

static void unlock_pair(struct bucket *a, struct bucket *b)
{
    fz_spin_unlock(&a->lock);
    if (a != b)
        fz_spin_unlock(&b->lock);
}

unsigned fz_requeue_addr(const void *addr, const void *addr2, unsigned wake, unsigned max)
{
    struct bucket *from = bucket_of(addr), *to = bucket_of(addr2);
    unsigned woken, moved = 0;
    lock_pair(from, to);
    struct fz_waiter *list = take_waiters(from, addr, ~0u, wake, &woken);
    for (struct fz_waiter *w = from->head, *next; w && moved < max; w = next) {
        next = w->next;
        if (w->addr != addr || atomic_load(&w->claimed))
            continue;
        dequeue(from, w);
        w->addr = addr2;
        enqueue(to, w);
        moved++;
    }
    unlock_pair(from, to);
    wake_list(NULL, list);
    return woken + moved;
}

void fz_park_after_fork(void)
{
    /* every waiter was another thread, gone in the child */
    fz_zero_table(buckets, sizeof buckets);
}

/* ---- wakes from signal handlers --------------------------------------- */

/* A handler may have interrupted code holding the bucket or idle-list
 * spinlock on this very thread, so it must not take them: its wakes wait
 * in these slots until a carrier's scheduler runs them (find_work). */
#define DEFERRED_SLOTS 256
static _Atomic(const void *) deferred[DEFERRED_SLOTS];

bool fz_unpark_addr_deferred(const void *addr)
{
    for (unsigned i = 0; i < DEFERRED_SLOTS; i++) {
        const void *expected = NULL;
        if (atomic_compare_exchange_strong(&deferred[i], &expected, addr)) {
            atomic_fetch_add(&fz_rt.deferred_wakes, 1);
            fz_driver_wake();
            return true;
        }
    }
    return false;
}

void fz_park_run_deferred(struct fz_carrier *c)
{
    if (!atomic_exchange(&fz_rt.deferred_wakes, 0))
        return;
    for (unsigned i = 0; i < DEFERRED_SLOTS; i++) {
        const void *addr = atomic_exchange(&deferred[i], NULL);
        if (addr)
            fz_unpark_addr_on(c, addr, ~0u, 1);
    }
}

bool fz_in_signal_handler(void)
{
    return atomic_load_explicit(&fz_rt.handlers_running, memory_order_relaxed) != 0;
}
