/* Run queues: a carrier's bounded local queue and the global inject queue.
 *
 * Local queue (struct fz_runq): single producer (its carrier), many
 * consumers.  Only the owner pushes; the owner pops and other carriers steal
 * half, all by CAS on `head`.  A thief copies slots before its CAS and throws
 * the copy away if the CAS fails, so a slot overwritten meanwhile is never
 * used.  When full, the owner moves half of the queue plus the new task to
 * the inject queue in one splice.
 *
 * Inject queue: an intrusive FIFO under a spinlock, for overflow and for
 * wakes from threads that are not carriers.  `len` lets carriers skip the
 * lock when it is empty.
 *
 * LIFO slot (one per carrier): the task its running fiber woke last, run
 * next by the owner when that fiber parks -- a hand-off that stays on one
 * CPU.  The owner puts and takes with one exchange.  Another carrier may
 * take it too, but only if, between two looks some time apart, the slot
 * held the same task and the owner's switch counter (`epoch`, bumped each
 * time the owner switches to a fiber) did not move: the waker kept the
 * carrier instead of parking, so the woken task would otherwise wait for
 * it.  A waker that parks at once (a ping-pong) switches between the
 * looks, and its partner stays on its CPU.
 *
 * Neither touches TLS or libc: they run on the scheduler path.
 */
#ifndef FZ_RUNQ_H
#define FZ_RUNQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "runtime/assert.h"
#include "runtime/spinlock.h"

#define FZ_RUNQ_SIZE 256u

struct fz_task {
    struct fz_task *next; /* inject-queue link */
};

struct fz_inject {
    fz_spinlock lock;
    struct fz_task *head, *tail;
    atomic_size_t len;
};

struct fz_runq {
    _Alignas(FZ_CACHE_LINE) atomic_uint head; /* consumers */
    _Alignas(FZ_CACHE_LINE) atomic_uint tail; /* owner */
    _Atomic(struct fz_task *) slots[FZ_RUNQ_SIZE];
};
/* Stealers write head, the owner writes tail: never on one line. */
_Static_assert(offsetof(struct fz_runq, tail) - offsetof(struct fz_runq, head) >= FZ_CACHE_LINE,
               "run-queue head and tail on different cache lines");
/* Positions are free-running unsigned counters taken modulo the size. */
_Static_assert((FZ_RUNQ_SIZE & (FZ_RUNQ_SIZE - 1)) == 0, "run-queue size is a power of two");

void fz_runq_init(struct fz_runq *q);
/* Owner only.  Overflow goes to inj. */
void fz_runq_push(struct fz_runq *q, struct fz_task *t, struct fz_inject *inj);
/* Owner only.  FIFO. */
struct fz_task *fz_runq_pop(struct fz_runq *q);
/* Any thread: move about half of src into dst (dst's owner calls this, dst
 * empty) and return one task to run now, or NULL. */
struct fz_task *fz_runq_steal(struct fz_runq *dst, struct fz_runq *src);
static inline unsigned fz_runq_len(struct fz_runq *q)
{
    return atomic_load_explicit(&q->tail, memory_order_acquire) -
           atomic_load_explicit(&q->head, memory_order_acquire);
}

typedef _Atomic(struct fz_task *) fz_lifo_slot;

/* Owner: put t in the slot; returns the task it displaced (or NULL).
 * Sequentially consistent: a carrier going idle publishes itself and then
 * reads the slot, the waker writes the slot and then reads the idle count
 * (sched.c), and one of them must see the other. */
static inline struct fz_task *fz_lifo_put(fz_lifo_slot *slot, struct fz_task *t)
{
    return atomic_exchange_explicit(slot, t, memory_order_seq_cst);
}
/* Owner (or the monitor rescuing it): empty the slot. */
static inline struct fz_task *fz_lifo_take(fz_lifo_slot *slot)
{
    if (!atomic_load_explicit(slot, memory_order_relaxed))
        return NULL;
    return atomic_exchange_explicit(slot, NULL, memory_order_acquire);
}
/* What a thief saw in a LIFO slot, to compare with a later look. */
struct fz_lifo_seen {
    struct fz_task *task; /* NULL: the slot was empty */
    unsigned epoch;       /* the owner's epoch then */
};
static inline struct fz_lifo_seen fz_lifo_look(fz_lifo_slot *slot, const atomic_uint *owner_epoch)
{
    struct fz_lifo_seen seen;
    seen.task = atomic_load_explicit(slot, memory_order_seq_cst);
    seen.epoch = atomic_load_explicit(owner_epoch, memory_order_acquire);
    return seen;
}
/* Any other thread, some time after `seen`: take the slot's task if it is
 * still the one seen and the owner has not switched since (its waker kept
 * the carrier all that time).  NULL otherwise. */
struct fz_task *fz_lifo_steal(fz_lifo_slot *slot, const atomic_uint *owner_epoch,
                              struct fz_lifo_seen seen);

void fz_inject_init(struct fz_inject *inj);
void fz_inject_push(struct fz_inject *inj, struct fz_task *t);
/* Append a linked chain first..last (n tasks). */
void fz_inject_push_chain(struct fz_inject *inj, struct fz_task *first, struct fz_task *last,
                          size_t n);
struct fz_task *fz_inject_pop(struct fz_inject *inj);
static inline bool fz_inject_empty(struct fz_inject *inj)
{
    return atomic_load_explicit(&inj->len, memory_order_acquire) == 0;
}

#endif
