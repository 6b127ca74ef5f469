/* Run queues (see runq.h for the ownership rules). */
#include "runtime/runq.h"

#define MASK (FZ_RUNQ_SIZE - 1)

void fz_runq_init(struct fz_runq *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    for (unsigned i = 0; i < FZ_RUNQ_SIZE; i++)
        atomic_init(&q->slots[i], NULL);
}

/* Move half of a full queue plus t to the inject queue.  Fails (returns
 * false) if a thief took some meanwhile: the caller then retries the push. */
static bool spill_half(struct fz_runq *q, unsigned head, unsigned tail, struct fz_task *t,
                       struct fz_inject *inj)
{
    unsigned n = (tail - head) / 2;
    if (!atomic_compare_exchange_strong_explicit(&q->head, &head, head + n, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return false;
    struct fz_task *first = NULL, *last = NULL;
    for (unsigned i = 0; i < n; i++) {
        struct fz_task *x =
            atomic_load_explicit(&q->slots[(head + i) & MASK], memory_order_relaxed);
        x->next = NULL;
        if (last)
            last->next = x;
        else
            first = x;
        last = x;
    }
    t->next = NULL;
    if (last)
        last->next = t;
    else
        first = t;
    fz_inject_push_chain(inj, first, t, n + 1);
    return true;
}

void fz_runq_push(struct fz_runq *q, struct fz_task *t, struct fz_inject *inj)
{
    for (;;) {
        unsigned head = atomic_load_explicit(&q->head, memory_order_acquire);
        unsigned tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (tail - head < FZ_RUNQ_SIZE) {
            atomic_store_explicit(&q->slots[tail & MASK], t, memory_order_relaxed);
            atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
            return;
        }
        if (spill_half(q, head, tail, t, inj))
            return;
    }
}

struct fz_task *fz_runq_pop(struct fz_runq *q)
{
    unsigned head = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        unsigned tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (head == tail)
            return NULL;
        struct fz_task *t = atomic_load_explicit(&q->slots[head & MASK], memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&q->head, &head, head + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return t;
    }
}

struct fz_task *fz_runq_steal(struct fz_runq *dst, struct fz_runq *src)
{
    unsigned dtail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
    for (;;) {
        unsigned head = atomic_load_explicit(&src->head, memory_order_acquire);
        unsigned tail = atomic_load_explicit(&src->tail, memory_order_acquire);
        unsigned avail = tail - head;
        if (avail == 0 || avail > FZ_RUNQ_SIZE) {
            if (avail == 0)
                return NULL;
            continue; /* torn read of head/tail: retry */
        }
        unsigned n = avail - avail / 2;
        for (unsigned i = 0; i < n; i++) {
            struct fz_task *x =
                atomic_load_explicit(&src->slots[(head + i) & MASK], memory_order_relaxed);
            atomic_store_explicit(&dst->slots[(dtail + i) & MASK], x, memory_order_relaxed);
        }
        if (atomic_compare_exchange_weak_explicit(&src->head, &head, head + n, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            /* keep the last stolen task to run now, publish the rest */
            n--;
            struct fz_task *run =
                atomic_load_explicit(&dst->slots[(dtail + n) & MASK], memory_order_relaxed);
            if (n)
                atomic_store_explicit(&dst->tail, dtail + n, memory_order_release);
            return run;
        }
    }
}

struct fz_task *fz_lifo_steal(fz_lifo_slot *slot, const atomic_uint *owner_epoch,
                              struct fz_lifo_seen seen)
{
    if (!seen.task || atomic_load_explicit(slot, memory_order_relaxed) != seen.task ||
        atomic_load_explicit(owner_epoch, memory_order_acquire) != seen.epoch)
        return NULL;
    struct fz_task *expected = seen.task;
    if (atomic_compare_exchange_strong_explicit(slot, &expected, NULL, memory_order_acq_rel,
                                                memory_order_relaxed))
        return seen.task;
    return NULL;
}

void fz_inject_init(struct fz_inject *inj)
{
    inj->lock = (fz_spinlock){0};
    inj->head = inj->tail = NULL;
    atomic_init(&inj->len, 0);
}

void fz_inject_push_chain(struct fz_inject *inj, struct fz_task *first, struct fz_task *last,
                          size_t n)
{
    last->next = NULL;
    fz_spin_lock(&inj->lock);
    if (inj->tail)
        inj->tail->next = first;
    else
        inj->head = first;
    inj->tail = last;
    atomic_fetch_add_explicit(&inj->len, n, memory_order_release);
    fz_spin_unlock(&inj->lock);
}

void fz_inject_push(struct fz_inject *inj, struct fz_task *t)
{
    fz_inject_push_chain(inj, t, t, 1);
}

struct fz_task *fz_inject_pop(struct fz_inject *inj)
{
    if (fz_inject_empty(inj))
        return NULL;
    fz_spin_lock(&inj->lock);
    struct fz_task *t = inj->head;
    if (t) {
        inj->head = t->next;
        if (!inj->head)
            inj->tail = NULL;
        atomic_fetch_sub_explicit(&inj->len, 1, memory_order_relaxed);
    }
    fz_spin_unlock(&inj->lock);
    return t;
}
