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
