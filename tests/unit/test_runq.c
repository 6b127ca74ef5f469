/* Unit test for runtime/runq.c: a carrier's local run queue and the
 * global inject queue.
 *
 * The property checked everywhere: every task pushed comes out exactly
 * once -- popped by the owner, stolen by another queue's owner, or taken
 * from the inject queue after an overflow -- never lost, never twice.
 * Tasks carry an id; a table counts how often each id came out.
 *
 * Usage: test_runq [ROUNDS]  (default 200 concurrent rounds) */
#include "runtime/runq.h"

#include "tap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct item {
    struct fz_task task; /* first: a task pointer is an item pointer */
    unsigned id;
};

static struct item *items;
static _Atomic unsigned char *seen;

static void count_out(struct fz_task *t)
{
    atomic_fetch_add(&seen[((struct item *)t)->id], 1);
}

/* How many ids came out other than exactly once. */
static unsigned wrong_counts(unsigned n)
{
    unsigned bad = 0;
    for (unsigned i = 0; i < n; i++)
        bad += atomic_load(&seen[i]) != 1;
    return bad;
}

static void reset(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        items[i].id = i;
        items[i].task.next = NULL;
        atomic_store(&seen[i], 0);
    }
}

/* ---- single-threaded ------------------------------------------------- */

static void fifo_and_overflow(void)
{
    struct fz_runq q;
    struct fz_inject inj;
    fz_runq_init(&q);
    fz_inject_init(&inj);
    unsigned n = FZ_RUNQ_SIZE * 3;
    reset(n);
    for (unsigned i = 0; i < 10; i++)
        fz_runq_push(&q, &items[i].task, &inj);
    TAP_CHECK(fz_runq_len(&q) == 10, "ten pushes, length ten");
    int in_order = 1;
    for (unsigned i = 0; i < 10; i++) {
        struct fz_task *t = fz_runq_pop(&q);
        if (!t || ((struct item *)t)->id != i)
            in_order = 0;
    }
    TAP_CHECK(in_order, "the owner pops in FIFO order");
    TAP_CHECK(fz_runq_pop(&q) == NULL, "empty queue pops NULL");

    reset(n);
    for (unsigned i = 0; i < n; i++)
        fz_runq_push(&q, &items[i].task, &inj);
    TAP_CHECK(!fz_inject_empty(&inj), "pushing past %u spills to the inject queue", FZ_RUNQ_SIZE);
    TAP_CHECK(fz_runq_len(&q) <= FZ_RUNQ_SIZE, "the local queue never holds more than its size");
    struct fz_task *t;
    while ((t = fz_runq_pop(&q)))
        count_out(t);
    while ((t = fz_inject_pop(&inj)))
        count_out(t);
    TAP_CHECK(wrong_counts(n) == 0, "after overflow every task comes out exactly once");
}

static void steal_half(void)
{
    struct fz_runq victim, thief;
    struct fz_inject inj;
    fz_runq_init(&victim);
    fz_runq_init(&thief);
    fz_inject_init(&inj);
    reset(100);
    for (unsigned i = 0; i < 100; i++)
        fz_runq_push(&victim, &items[i].task, &inj);
    struct fz_task *first = fz_runq_steal(&thief, &victim);
    unsigned moved = fz_runq_len(&thief) + (first != NULL);
    TAP_CHECK(first != NULL, "steal returns a task to run");
    TAP_CHECK(moved >= 45 && moved <= 55, "steal takes about half (%u of 100)", moved);
    TAP_CHECK(fz_runq_len(&victim) + moved == 100, "what was not stolen stays with the victim");
    struct fz_task *t;
    if (first)
        count_out(first);
    while ((t = fz_runq_pop(&thief)))
        count_out(t);
    while ((t = fz_runq_pop(&victim)))
        count_out(t);
    TAP_CHECK(wrong_counts(100) == 0, "after a steal every task comes out exactly once");
    TAP_CHECK(fz_runq_steal(&thief, &victim) == NULL, "stealing from an empty queue gets nothing");
}

/* ---- concurrent: one owner pushing and popping, three thieves --------- */

#define THIEVES 3
#define PER_ROUND 20000

static struct fz_runq owner_q, thief_q[THIEVES];
static struct fz_inject shared_inj;
static atomic_int producing;

static void *thief(void *arg)
{
    struct fz_runq *mine = arg;
    struct fz_task *t;
    for (;;) {
        int done = !atomic_load(&producing);
        if ((t = fz_runq_steal(mine, &owner_q))) {
            count_out(t);
            while ((t = fz_runq_pop(mine)))
                count_out(t);
        } else if ((t = fz_inject_pop(&shared_inj))) {
            count_out(t);
        } else if (done) {
            return NULL;
        }
    }
}

static unsigned concurrent_round(void)
{
    reset(PER_ROUND);
    fz_runq_init(&owner_q);
    fz_inject_init(&shared_inj);
    atomic_store(&producing, 1);
    pthread_t t[THIEVES];
    for (int i = 0; i < THIEVES; i++) {
        fz_runq_init(&thief_q[i]);
        pthread_create(&t[i], NULL, thief, &thief_q[i]);
    }
    struct fz_task *task;
    for (unsigned i = 0; i < PER_ROUND; i++) {
        fz_runq_push(&owner_q, &items[i].task, &shared_inj);
        if (i % 3 == 0 && (task = fz_runq_pop(&owner_q)))
            count_out(task);
    }
    while ((task = fz_runq_pop(&owner_q)))
        count_out(task);
    atomic_store(&producing, 0);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(t[i], NULL);
    while ((task = fz_inject_pop(&shared_inj)))
        count_out(task);
    return wrong_counts(PER_ROUND);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    unsigned cap = FZ_RUNQ_SIZE * 3 > PER_ROUND ? FZ_RUNQ_SIZE * 3 : PER_ROUND;
    items = calloc(cap, sizeof *items);
    seen = calloc(cap, sizeof *seen);
    fifo_and_overflow();
    steal_half();
    unsigned bad = 0, bad_rounds = 0;
    for (int r = 0; r < rounds; r++) {
        unsigned b = concurrent_round();
        bad += b;
        bad_rounds += b != 0;
    }
    TAP_CHECK(bad == 0,
              "%d rounds of %d tasks, 1 owner pushing/popping and %d thieves: "
              "every task exactly once (%u wrong in %u rounds)",
              rounds, PER_ROUND, THIEVES, bad, bad_rounds);
    return tap_done();
}
