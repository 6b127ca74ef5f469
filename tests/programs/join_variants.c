// join_variants: the non-blocking and timed joins (tryjoin, timedjoin,
// clockjoin), join errors (detached thread, self), and thread identity:
// pthread_self/pthread_equal and per-thread names stay put across sleeps.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "libc_compat.h"

#define NIDENT 4
#define TIMEOUT_NS 100000000L // 100 ms

static int failures;
static atomic_int release; // threads waiting to be let go poll this

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static void check(int err, const char *what)
{
    if (err) {
        fprintf(stderr, "%s: %s\n", what, strerror(err));
        exit(1);
    }
}

static struct timespec now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts;
}

static struct timespec add_ns(struct timespec ts, long ns)
{
    ts.tv_sec += (ts.tv_nsec + ns) / 1000000000L;
    ts.tv_nsec = (ts.tv_nsec + ns) % 1000000000L;
    return ts;
}

static int reached(struct timespec t, struct timespec deadline)
{
    return t.tv_sec > deadline.tv_sec ||
           (t.tv_sec == deadline.tv_sec && t.tv_nsec >= deadline.tv_nsec);
}

static void *wait_release(void *arg)
{
    while (!atomic_load(&release))
        usleep(1000);
    return arg;
}

static pthread_t start_waiter(void *result)
{
    pthread_t tid;
    atomic_store(&release, 0);
    check(pthread_create(&tid, NULL, wait_release, result), "pthread_create");
    return tid;
}

static void tryjoin_test(void)
{
    void *ret = NULL;
    pthread_t tid = start_waiter((void *)11);
    report("tryjoin: EBUSY while the thread runs", pthread_tryjoin_np(tid, &ret) == EBUSY);
    atomic_store(&release, 1);
    int err = EBUSY;
    for (int i = 0; i < 10000 && err == EBUSY; i++) {
        usleep(1000);
        err = pthread_tryjoin_np(tid, &ret);
    }
    report("tryjoin: 0 and the result once it has ended", err == 0 && ret == (void *)11);
}

static void timedjoin_test(void)
{
    void *ret = NULL;
    pthread_t tid = start_waiter((void *)22);
    struct timespec start = now(CLOCK_MONOTONIC);
    struct timespec deadline = add_ns(now(CLOCK_REALTIME), TIMEOUT_NS);
    int err = pthread_timedjoin_np(tid, &ret, &deadline);
    struct timespec end_rt = now(CLOCK_REALTIME), end = now(CLOCK_MONOTONIC);
    report("timedjoin: ETIMEDOUT on a running thread", err == ETIMEDOUT);
    report("timedjoin: not before the deadline",
           reached(end_rt, deadline) && reached(end, add_ns(start, TIMEOUT_NS - 1000000)));
    atomic_store(&release, 1);
    deadline = add_ns(now(CLOCK_REALTIME), 10000000000L);
    err = pthread_timedjoin_np(tid, &ret, &deadline);
    report("timedjoin: 0 and the result before a later deadline", err == 0 && ret == (void *)22);
}

static void clockjoin_test(void)
{
    void *ret = NULL;
    pthread_t tid = start_waiter((void *)33);
    struct timespec deadline = add_ns(now(CLOCK_MONOTONIC), TIMEOUT_NS);
    int err = pthread_clockjoin_np(tid, &ret, CLOCK_MONOTONIC, &deadline);
    report("clockjoin CLOCK_MONOTONIC: ETIMEDOUT on a running thread", err == ETIMEDOUT);
    report("clockjoin CLOCK_MONOTONIC: not before the deadline",
           reached(now(CLOCK_MONOTONIC), deadline));
    atomic_store(&release, 1);
    deadline = add_ns(now(CLOCK_MONOTONIC), 10000000000L);
    err = pthread_clockjoin_np(tid, &ret, CLOCK_MONOTONIC, &deadline);
    report("clockjoin CLOCK_MONOTONIC: 0 and the result", err == 0 && ret == (void *)33);
}

static atomic_int detached_done;

static void *detached_thread(void *arg)
{
    wait_release(NULL);
    atomic_store(&detached_done, 1);
    return NULL;
}

static void *join_self(void *arg)
{
    return (void *)(intptr_t)pthread_join(pthread_self(), NULL);
}

static void join_errors_test(void)
{
    pthread_t tid;
    void *ret = NULL;
    atomic_store(&release, 0);
    check(pthread_create(&tid, NULL, detached_thread, NULL), "pthread_create");
    check(pthread_detach(tid), "pthread_detach");
    report("join of a detached thread: EINVAL", pthread_join(tid, NULL) == EINVAL);
    atomic_store(&release, 1);
    while (!atomic_load(&detached_done))
        usleep(1000);
    report("join of self in main: EDEADLK", pthread_join(pthread_self(), NULL) == EDEADLK);
    check(pthread_create(&tid, NULL, join_self, NULL), "pthread_create");
    check(pthread_join(tid, &ret), "pthread_join");
    report("join of self in a thread: EDEADLK", ret == (void *)(intptr_t)EDEADLK);
}

struct ident {
    int k;
    pthread_t self;  // what the thread saw first
    int self_stable; // pthread_self unchanged across sleeps and yields
    int name_ok;     // its own name read back after sleeping
};

static atomic_int named, names_read;

static void name_of(int k, char *buf, size_t len)
{
    snprintf(buf, len, "jv-worker-%d", k);
}

static void *identity(void *arg)
{
    struct ident *id = arg;
    char want[16], got[16];
    id->self = pthread_self();
    name_of(id->k, want, sizeof want);
    id->name_ok = pthread_setname_np(pthread_self(), want) == 0;
    atomic_fetch_add(&named, 1);
    id->self_stable = 1;
    for (int i = 0; i < 10 || !atomic_load(&names_read); i++) {
        usleep(2000 + 1000 * id->k);
        sched_yield();
        if (!pthread_equal(pthread_self(), id->self))
            id->self_stable = 0;
        if (pthread_getname_np(pthread_self(), got, sizeof got) != 0 || strcmp(got, want) != 0)
            id->name_ok = 0;
    }
    return NULL;
}

// Four threads alive together: distinct ids, stable ids, their own names.
static void identity_test(void)
{
    pthread_t tids[NIDENT], main_self = pthread_self();
    struct ident ids[NIDENT];
    int distinct = 1, matches = 1, stable = 1, names = 1, outside = 1;
    char got[16], want[16];
    for (int k = 0; k < NIDENT; k++) {
        ids[k] = (struct ident){.k = k};
        check(pthread_create(&tids[k], NULL, identity, &ids[k]), "pthread_create");
    }
    while (atomic_load(&named) < NIDENT)
        usleep(1000);
    for (int k = 0; k < NIDENT; k++) {
        name_of(k, want, sizeof want);
        if (pthread_getname_np(tids[k], got, sizeof got) != 0 || strcmp(got, want) != 0)
            outside = 0;
    }
    atomic_store(&names_read, 1);
    for (int k = 0; k < NIDENT; k++)
        check(pthread_join(tids[k], NULL), "pthread_join");
    for (int k = 0; k < NIDENT; k++) {
        matches &= pthread_equal(ids[k].self, tids[k]) != 0;
        stable &= ids[k].self_stable;
        names &= ids[k].name_ok;
        distinct &= !pthread_equal(ids[k].self, main_self);
        for (int j = 0; j < k; j++)
            distinct &= !pthread_equal(ids[k].self, ids[j].self);
    }
    report("pthread_self in a thread equals the id pthread_create gave", matches);
    report("pthread_self unchanged across sleeps and yields", stable);
    report("live threads have distinct ids", distinct);
    report("main's pthread_self unchanged across the test",
           pthread_equal(pthread_self(), main_self));
    report("each thread reads back its own name after sleeping", names);
    report("main reads each thread's name", outside);
}

static void name_errors_test(void)
{
    char small[8];
    report("setname with 16+ characters: ERANGE",
           pthread_setname_np(pthread_self(), "a-name-of-20-chars") == ERANGE);
    report("getname into 8 bytes: ERANGE",
           pthread_getname_np(pthread_self(), small, sizeof small) == ERANGE);
}

int main(void)
{
    alarm(60);
    tryjoin_test();
    timedjoin_test();
    clockjoin_test();
    if (LIBC_REPORTS_JOIN_MISUSE)
        join_errors_test();
    identity_test();
    name_errors_test();
    if (failures) {
        fprintf(stderr, "%d join/identity check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
