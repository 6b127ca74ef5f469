// c11_threads: the C11 <threads.h> thread API: thrd_create/join with result
// codes, thrd_exit from a nested call, thrd_detach, thrd_current/thrd_equal
// across sleeps and yields, tss_* with a destructor, and call_once.
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#define NJOIN 8
#define NTSS 16
#define NDETACH 4
#define NONCE 16

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    thrd_sleep(&ts, NULL);
}

static void must_create(thrd_t *t, thrd_start_t fn, void *arg)
{
    if (thrd_create(t, fn, arg) != thrd_success) {
        fprintf(stderr, "thrd_create failed\n");
        exit(1);
    }
}

static int square(void *arg)
{
    int k = (int)(intptr_t)arg;
    nap_ms(k % 4);
    return k * k;
}

static void join_test(void)
{
    thrd_t t[NJOIN];
    int sum = 0, all_joined = 1;
    for (int k = 0; k < NJOIN; k++)
        must_create(&t[k], square, (void *)(intptr_t)k);
    for (int k = 0; k < NJOIN; k++) {
        int res = -1;
        all_joined &= thrd_join(t[k], &res) == thrd_success;
        sum += res;
    }
    printf("sum of squares from %d joined threads: %d\n", NJOIN, sum);
    report("thrd_join returns thrd_success", all_joined);
}

// Leaves the thread with thrd_exit(42) from DEPTH calls down.
static int leave_deep(int depth)
{
    if (depth < 0)
        return -1;
    if (depth == 0)
        thrd_exit(42);
    nap_ms(1);
    return leave_deep(depth - 1);
}

static int exits_early(void *arg)
{
    return leave_deep(5); // never returns here: 42 comes from thrd_exit
}

static void exit_test(void)
{
    thrd_t t;
    int res = 0;
    must_create(&t, exits_early, NULL);
    thrd_join(t, &res);
    printf("thrd_exit from a nested call gives result %d\n", res);
}

static atomic_int detached_done;

static int detached(void *arg)
{
    nap_ms(5);
    atomic_fetch_add(&detached_done, 1);
    return 0;
}

static void detach_test(void)
{
    int all = 1;
    for (int k = 0; k < NDETACH; k++) {
        thrd_t t;
        must_create(&t, detached, NULL);
        all &= thrd_detach(t) == thrd_success;
    }
    for (int i = 0; i < 5000 && atomic_load(&detached_done) < NDETACH; i++)
        nap_ms(1);
    report("thrd_detach returns thrd_success", all);
    printf("detached threads finished: %d\n", atomic_load(&detached_done));
}

static thrd_t seen_by_thread;

static int identity(void *arg)
{
    thrd_t first = thrd_current();
    int stable = 1;
    for (int i = 0; i < 10; i++) {
        nap_ms(1);
        thrd_yield();
        stable &= thrd_equal(thrd_current(), first) != 0;
    }
    seen_by_thread = first;
    return stable;
}

static void identity_test(void)
{
    thrd_t main_id = thrd_current(), t;
    int stable = 0;
    must_create(&t, identity, NULL);
    thrd_join(t, &stable);
    report("thrd_current stable across thrd_sleep and thrd_yield", stable);
    report("thrd_current in the thread equals thrd_create's id", thrd_equal(seen_by_thread, t));
    report("the thread's id differs from main's", !thrd_equal(seen_by_thread, main_id));
    report("main's thrd_current unchanged", thrd_equal(thrd_current(), main_id));
}

static tss_t key;
static atomic_int dtor_calls, tss_bad;

static void tss_dtor(void *p)
{
    free(p);
    atomic_fetch_add(&dtor_calls, 1);
}

static int tss_user(void *arg)
{
    int k = (int)(intptr_t)arg;
    int *v = malloc(sizeof *v);
    *v = k;
    if (tss_get(key) != NULL || tss_set(key, v) != thrd_success)
        atomic_fetch_add(&tss_bad, 1);
    for (int i = 0; i < 5; i++) {
        nap_ms(1 + k % 3);
        thrd_yield();
        int *got = tss_get(key);
        if (got != v || *got != k)
            atomic_fetch_add(&tss_bad, 1);
    }
    return 0;
}

static void tss_test(void)
{
    thrd_t t[NTSS];
    if (tss_create(&key, tss_dtor) != thrd_success) {
        fprintf(stderr, "tss_create failed\n");
        exit(1);
    }
    for (int k = 0; k < NTSS; k++)
        must_create(&t[k], tss_user, (void *)(intptr_t)k);
    for (int k = 0; k < NTSS; k++)
        thrd_join(t[k], NULL);
    tss_delete(key);
    printf("tss: %d threads, %d bad values, %d destructor calls\n", NTSS, atomic_load(&tss_bad),
           atomic_load(&dtor_calls));
}

static once_flag once = ONCE_FLAG_INIT;
static atomic_int once_runs, once_early;

static void init_once(void)
{
    nap_ms(20);
    atomic_fetch_add(&once_runs, 1);
}

static int once_caller(void *arg)
{
    call_once(&once, init_once);
    if (atomic_load(&once_runs) != 1)
        atomic_fetch_add(&once_early, 1);
    return 0;
}

static void once_test(void)
{
    thrd_t t[NONCE];
    for (int k = 0; k < NONCE; k++)
        must_create(&t[k], once_caller, NULL);
    for (int k = 0; k < NONCE; k++)
        thrd_join(t[k], NULL);
    printf("call_once: %d run(s) for %d threads, %d returned early\n", atomic_load(&once_runs),
           NONCE, atomic_load(&once_early));
}

int main(void)
{
    alarm(60);
    join_test();
    exit_test();
    detach_test();
    identity_test();
    tss_test();
    once_test();
    if (failures || atomic_load(&detached_done) != NDETACH || atomic_load(&tss_bad) ||
        atomic_load(&dtor_calls) != NTSS || atomic_load(&once_runs) != 1 ||
        atomic_load(&once_early)) {
        fprintf(stderr, "C11 threads misbehaved\n");
        return 1;
    }
    return 0;
}
