/* Unit test for runtime/runq.c: a carrier's local run queue and the
 * global inject queue.
 *
 * The property checked everywhere: every task pushed comes out exactly
 * once -- popped by the owner, stolen by another queue's owner, or taken
 * from the inject queue after an overflow -- never lost, never twice.
 * Tasks carry an id; a table counts how often each id came out.
 *
 * The LIFO slot: its steal rule (a thief takes the task only if the slot
 * and the owner's switch counter are unchanged since its look), and the
 * same exactly-once property with an owner and a thief racing on it.
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

/* ---- the LIFO slot ---------------------------------------------------- */

static void lifo_rules(void)
{
    fz_lifo_slot slot = NULL;
    atomic_uint epoch = 7;
    reset(3);
    TAP_CHECK(fz_lifo_put(&slot, &items[0].task) == NULL, "lifo: put into an empty slot");
    TAP_CHECK(fz_lifo_put(&slot, &items[1].task) == &items[0].task,
              "lifo: a second put displaces the first");
    struct fz_lifo_seen seen = fz_lifo_look(&slot, &epoch);
    TAP_CHECK(seen.task == &items[1].task && seen.epoch == 7, "lifo: a look sees task and epoch");
    atomic_store(&epoch, 8); /* the owner switched: its waker parked */
    TAP_CHECK(fz_lifo_steal(&slot, &epoch, seen) == NULL && slot == &items[1].task,
              "lifo: no steal once the owner switched since the look");
    seen = fz_lifo_look(&slot, &epoch);
    fz_lifo_put(&slot, &items[2].task); /* refilled meanwhile */
    TAP_CHECK(fz_lifo_steal(&slot, &epoch, seen) == NULL && slot == &items[2].task,
              "lifo: no steal when the slot holds another task than the one seen");
    seen = fz_lifo_look(&slot, &epoch);
    TAP_CHECK(fz_lifo_steal(&slot, &epoch, seen) == &items[2].task && slot == NULL,
              "lifo: steal when task and epoch are unchanged since the look");
    seen = fz_lifo_look(&slot, &epoch);
    TAP_CHECK(seen.task == NULL && fz_lifo_steal(&slot, &epoch, seen) == NULL,
              "lifo: nothing to steal from an empty slot");
    TAP_CHECK(fz_lifo_take(&slot) == NULL, "lifo: take from an empty slot");
}

/* An owner that puts tasks in its slot and takes them back, bumping its
 * epoch at each take as a switch does, against a thief stealing with the
 * look-then-steal rule: every task comes out exactly once. */
#define LIFO_TASKS 200000u
static fz_lifo_slot race_slot;
static atomic_uint race_epoch;
static atomic_int race_on;

static void *lifo_thief(void *arg)
{
    unsigned *stolen = arg;
    while (atomic_load(&race_on)) {
        struct fz_lifo_seen seen = fz_lifo_look(&race_slot, &race_epoch);
        for (int i = 0; i < 20; i++)
            __builtin_ia32_pause();
        struct fz_task *t = fz_lifo_steal(&race_slot, &race_epoch, seen);
        if (t) {
            count_out(t);
            ++*stolen;
        }
    }
    return NULL;
}

static void lifo_race(void)
{
    reset(LIFO_TASKS);
    race_slot = NULL;
    atomic_store(&race_epoch, 0);
    atomic_store(&race_on, 1);
    unsigned stolen = 0;
    pthread_t t;
    pthread_create(&t, NULL, lifo_thief, &stolen);
    struct fz_task *x;
    for (unsigned i = 0; i < LIFO_TASKS; i++) {
        if ((x = fz_lifo_put(&race_slot, &items[i].task)))
            count_out(x); /* displaced: the owner queues it elsewhere */
        if (i % 4 == 3) {
            /* the waker runs on a while: a chance for the thief */
            for (int k = 0; k < 200; k++)
                __builtin_ia32_pause();
        }
        if (i % 2 == 0 && (x = fz_lifo_take(&race_slot))) {
            atomic_fetch_add(&race_epoch, 1);
            count_out(x);
        }
    }
    if ((x = fz_lifo_take(&race_slot)))
        count_out(x);
    atomic_store(&race_on, 0);
    pthread_join(t, NULL);
    unsigned bad = wrong_counts(LIFO_TASKS);
    TAP_CHECK(bad == 0,
              "lifo race: %u tasks, owner putting/taking, a thief stealing (%u stolen): "
              "every task exactly once (%u wrong)",
              LIFO_TASKS, stolen, bad);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    unsigned cap = FZ_RUNQ_SIZE * 3 > PER_ROUND ? FZ_RUNQ_SIZE * 3 : PER_ROUND;
    if (cap < LIFO_TASKS)
        cap = LIFO_TASKS;
    items = calloc(cap, sizeof *items);
    seen = calloc(cap, sizeof *seen);
    fifo_and_overflow();
    steal_half();
    lifo_rules();
    lifo_race();
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
