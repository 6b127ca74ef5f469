/* Waiters and the parking lot (see park.h for the protocol).
 *
 * Parking lot: 1024 buckets of FIFO wait queues, each under its own
 * spinlock, keyed by address hash.  A waiter is linked in a bucket only
 * between fz_park_addr's validation and its return; the only code that
 * touches a linked waiter holds the bucket lock.  A waker claims a waiter
 * and unlinks it under the lock, and makes it run after dropping the lock.
 * A waiter woken by another source (timeout, interrupt) unlinks itself.
 *
 * Interrupt list: interruptible fibers currently blocked, so a signal
 * handler that ran without SA_RESTART can make one of them return EINTR.
 * Signal handlers never touch it directly (they only count, see
 * syscalls/signal.c); the scheduler calls fz_interrupt_one.  Threads that
 * are not fibers sleep in futex(2) and are interrupted by the kernel
 * (block_os_thread).
 */
#include <errno.h>
#include <stdint.h>
#include "runtime/driver.h"
#include "runtime/fiber.h"
#include "runtime/park.h"
#include "runtime/tls.h"
#include "runtime/sched.h"
#include "runtime/sys.h"

#define BUCKETS 1024

struct bucket {
    fz_spinlock lock;
    struct fz_waiter *head, *tail;
} __attribute__((aligned(64)));

static struct bucket buckets[BUCKETS];

static fz_spinlock interrupt_lock;
static struct fz_waiter *interrupt_head;

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

static void interrupt_list_add(struct fz_waiter *w)
{
    fz_spin_lock(&interrupt_lock);
    w->int_prev = NULL;
    w->int_next = interrupt_head;
    if (interrupt_head)
        interrupt_head->int_prev = w;
    interrupt_head = w;
    fz_spin_unlock(&interrupt_lock);
}

static void interrupt_list_remove(struct fz_waiter *w)
{
    fz_spin_lock(&interrupt_lock);
    if (w->int_prev)
        w->int_prev->int_next = w->int_next;
    else
        interrupt_head = w->int_next;
    if (w->int_next)
        w->int_next->int_prev = w->int_prev;
    fz_spin_unlock(&interrupt_lock);
}

/* Natively the kernel hands a process-directed signal to the main thread
 * unless it blocks it (it almost never has one pending already), so only
 * the main fiber's wait is interrupted; once main has exited or when it
 * blocks the signal, the longest-waiting fiber's that does not block it
 * (the list's tail).  A handler with SA_RESTART
 * interrupts only waits that are never restarted. */
void fz_interrupt_one(int sig, bool restart)
{
    struct fz_waiter *victim = NULL;
    uint64_t bit = 1ull << (sig - 1);
    struct fz_fiber *m = fz_rt.main_fiber;
    bool main_takes = !atomic_load(&fz_rt.main_exited) && !(m->sigmask & bit);
    fz_spin_lock(&interrupt_lock);
    for (struct fz_waiter *w = interrupt_head; w; w = w->int_next) {
        if (atomic_load(&w->claimed) || (w->fiber->sigmask & bit))
            continue;
        if (main_takes && w->fiber != m)
            continue;
        victim = w;
        if (main_takes)
            break;
    }
    if (victim && restart && victim->interruptible != FZ_INTR_ALWAYS)
        victim = NULL;
    bool won = victim && fz_waiter_claim(victim, FZ_WAKE_INTERRUPT);
    fz_spin_unlock(&interrupt_lock);
    if (won)
        fz_waiter_finish_wake(victim);
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
        struct timespec ts = fz_ns_to_ts(timed ? w->deadline : fz_now_ns() + FAR_NS);
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

/* pthread_cancel (fz_cancel_wake) finds a fiber's wait here, under the
 * fiber's lock, so it never touches a waiter whose frame is gone.  A
 * cancellation already requested ends the wait at once. */
static void cancel_point_enter(struct fz_fiber *self, struct fz_waiter *w)
{
    fz_spin_lock(&self->lock);
    self->cancel_waiter = w;
    fz_spin_unlock(&self->lock);
    if (fz_tcb_cancel_pending(self->tcb) && fz_waiter_claim(w, FZ_WAKE_INTERRUPT))
        fz_waiter_finish_wake(w);
}

static void cancel_point_leave(struct fz_fiber *self)
{
    fz_spin_lock(&self->lock);
    self->cancel_waiter = NULL;
    fz_spin_unlock(&self->lock);
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
    if (w->interruptible)
        interrupt_list_add(w);
    if (w->cancelable)
        cancel_point_enter(self, w);
    if (w->deadline) {
        w->timer.deadline = w->deadline;
        w->timer.owner = w;
        fz_timer_arm(&w->timer);
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
    self->parked_at = fz_coarse_now_ns();
    fz_park(self);
    self->waiter = NULL;
    if (w->deadline)
        fz_timer_disarm(&w->timer);
    if (w->cancelable)
        cancel_point_leave(self);
    if (w->interruptible)
        interrupt_list_remove(w);
    return w->reason;
}

int fz_sleep_until(uint64_t deadline, int interruptible)
{
    struct fz_waiter w;
    fz_waiter_init(&w, deadline ? deadline : 1, interruptible);
    return fz_waiter_block(&w);
}

/* ---- parking lot ----------------------------------------------------- */

static struct bucket *bucket_of(const void *addr)
{
    uint64_t h = (uint64_t)(uintptr_t)addr * 0x9e3779b97f4a7c15ull;
    return &buckets[h >> (64 - 10)];
}

static void enqueue(struct bucket *b, struct fz_waiter *w)
{
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
    for (unsigned i = 0; i < BUCKETS; i++)
        buckets[i] = (struct bucket){0};
    interrupt_lock = (fz_spinlock){0};
    interrupt_head = NULL;
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
