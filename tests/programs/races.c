/* Five classic concurrency bugs, each in a window so short that a native
 * run almost never hits it, for fiberize --seed / --explore (det.bats).
 *
 *   races BUG [fixed]
 *
 * BUG is one of:
 *   lost-update  read a counter, then take the mutex, then write it back
 *   check-act    check a flag, log, then act: two threads both act
 *   aba          Treiber-stack pop preempted between its read and its CAS
 *                while another thread pops two nodes and pushes one back
 *   missed-wake  pthread_cond_signal before the waiter waits (no predicate)
 *   deadlock     two threads take two mutexes in opposite orders
 * "fixed" runs the correct version of the same code.  Prints one line of
 * result; exits 0 when the result is the correct one, 1 when the bug
 * showed (a missed wake-up or a deadlock hangs instead, natively).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fixed;
static pthread_mutex_t m1 = PTHREAD_MUTEX_INITIALIZER, m2 = PTHREAD_MUTEX_INITIALIZER;

/* The second thread starts only once the first one runs: natively the
 * first is then microseconds ahead -- far past its window -- by the time
 * the second runs, which is what makes each bug rare there. */
static atomic_int first_running;

static void first_runs(void)
{
    atomic_store(&first_running, 1);
}

static void run_two(void *(*a)(void *), void *(*b)(void *))
{
    pthread_t ta, tb;
    pthread_create(&ta, NULL, a, NULL);
    while (!atomic_load(&first_running))
        sched_yield();
    pthread_create(&tb, NULL, b, NULL);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
}

/* ---- lost update ---- */
static long counter;

static void *add_one(void *arg)
{
    if (arg == NULL)
        first_runs();
    if (fixed) {
        pthread_mutex_lock(&m1);
        counter++;
        pthread_mutex_unlock(&m1);
        return NULL;
    }
    long seen = counter; /* the bug: read before the lock */
    pthread_mutex_lock(&m1);
    counter = seen + 1;
    pthread_mutex_unlock(&m1);
    return NULL;
}

static void *add_second(void *arg)
{
    (void)arg;
    return add_one(&counter);
}

static int lost_update(void)
{
    run_two(add_one, add_second);
    printf("counter %ld (expected 2)\n", counter);
    return counter == 2 ? 0 : 1;
}

/* ---- check then act ---- */
static int initialised, creations;

static void note(const char *what)
{
    pthread_mutex_lock(&m2); /* a log under its own lock */
    (void)what;
    pthread_mutex_unlock(&m2);
}

static void *init_once(void *arg)
{
    if (arg == NULL)
        first_runs();
    if (fixed)
        pthread_mutex_lock(&m1);
    if (!initialised) {
        note("creating the shared resource");
        creations++;
        initialised = 1;
    }
    if (fixed)
        pthread_mutex_unlock(&m1);
    return NULL;
}

static void *init_second(void *arg)
{
    (void)arg;
    return init_once(&creations);
}

static int check_act(void)
{
    run_two(init_once, init_second);
    printf("created %d times (expected 1)\n", creations);
    return creations == 1 ? 0 : 1;
}

/* ---- ABA on a lock-free stack ---- */
struct node {
    struct node *next;
    char name;
};
static struct node nodes[3] = {{&nodes[1], 'X'}, {&nodes[2], 'Y'}, {NULL, 'Z'}};
static _Atomic(struct node *) top = &nodes[0];
static struct node *popped_a, *popped_b[2];

static struct node *pop(bool yield_in_window)
{
    for (;;) {
        struct node *old = atomic_load(&top);
        if (!old)
            return NULL;
        struct node *next = old->next;
        if (yield_in_window)
            note("popping"); /* a lock and an unlock in the window */
        if (atomic_compare_exchange_strong(&top, &old, next))
            return old;
    }
}

static void push(struct node *n)
{
    struct node *old = atomic_load(&top);
    do
        n->next = old;
    while (!atomic_compare_exchange_weak(&top, &old, n));
}

static pthread_mutex_t stack_lock = PTHREAD_MUTEX_INITIALIZER;

static void *pop_one(void *arg)
{
    (void)arg;
    first_runs();
    if (fixed)
        pthread_mutex_lock(&stack_lock);
    popped_a = pop(true);
    if (fixed)
        pthread_mutex_unlock(&stack_lock);
    return NULL;
}

static void *pop_two_push_one(void *arg)
{
    (void)arg;
    if (fixed)
        pthread_mutex_lock(&stack_lock);
    popped_b[0] = pop(false);
    popped_b[1] = pop(false);
    push(popped_b[0]);
    if (fixed)
        pthread_mutex_unlock(&stack_lock);
    return NULL;
}

static int aba(void)
{
    run_two(pop_one, pop_two_push_one);
    /* every node must be in exactly one place: the stack, A's or B's hand */
    int seen[3] = {0};
    for (struct node *n = atomic_load(&top); n; n = n->next)
        if (++seen[n - nodes] > 1)
            break; /* a cycle */
    if (popped_a)
        seen[popped_a - nodes]++;
    if (popped_b[1])
        seen[popped_b[1] - nodes]++;
    int bad = 0;
    for (int i = 0; i < 3; i++)
        bad |= seen[i] != 1;
    printf("stack %s\n", bad ? "corrupt: a node is in two places" : "consistent");
    return bad;
}

/* ---- missed wake-up ---- */
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int signalled;

static void *waiter(void *arg)
{
    (void)arg;
    first_runs();
    pthread_mutex_lock(&m1);
    if (fixed) {
        while (!signalled)
            pthread_cond_wait(&cond, &m1);
    } else {
        pthread_cond_wait(&cond, &m1); /* the bug: no predicate */
    }
    pthread_mutex_unlock(&m1);
    return NULL;
}

static void *signaller(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&m1);
    signalled = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&m1);
    return NULL;
}

static int missed_wake(void)
{
    run_two(waiter, signaller);
    printf("woken\n");
    return 0;
}

/* ---- deadlock ---- */
static void *one_then_two(void *arg)
{
    (void)arg;
    first_runs();
    pthread_mutex_lock(&m1);
    pthread_mutex_lock(&m2);
    pthread_mutex_unlock(&m2);
    pthread_mutex_unlock(&m1);
    return NULL;
}

static void *two_then_one(void *arg)
{
    (void)arg;
    pthread_mutex_t *first = fixed ? &m1 : &m2, *second = fixed ? &m2 : &m1;
    pthread_mutex_lock(first);
    pthread_mutex_lock(second);
    pthread_mutex_unlock(second);
    pthread_mutex_unlock(first);
    return NULL;
}

static int deadlock(void)
{
    run_two(one_then_two, two_then_one);
    printf("both done\n");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(void);
    } bugs[] = {{"lost-update", lost_update},
                {"check-act", check_act},
                {"aba", aba},
                {"missed-wake", missed_wake},
                {"deadlock", deadlock}};
    fixed = argc > 2 && strcmp(argv[2], "fixed") == 0;
    for (size_t i = 0; argc > 1 && i < sizeof bugs / sizeof *bugs; i++)
        if (strcmp(argv[1], bugs[i].name) == 0)
            return bugs[i].run();
    fprintf(stderr, "usage: races lost-update|check-act|aba|missed-wake|deadlock [fixed]\n");
    return 2;
}
