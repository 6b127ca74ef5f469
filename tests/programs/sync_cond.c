/* Condition variables: a bounded buffer with exact checksums, signal and
 * broadcast, timed waits on both clocks (never early, bounded lateness, the
 * mutex held again after a time-out), C11 cnd/mtx, and many waiters at once
 * (under fiberize with FIBERIZE_WORKERS=1 they must park, not hold the
 * carrier: the bats file checks the hand-off counter).
 * Usage: sync_cond [producers consumers items]   (default 4 4 50000) */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <time.h>
#include "libc_compat.h"
#include "timed_wait.h"

static void check(const char *what, int got, int want)
{
    if (got == want)
        printf("ok %s\n", what);
    else
        printf("FAIL %s: got %d (%s), want %d (%s)\n", what, got, strerror(got), want,
               strerror(want));
}

/* ---- bounded buffer ------------------------------------------------------ */

#define SLOTS 8
static pthread_mutex_t buf_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static long slots[SLOTS];
static unsigned head, count;
static long items = 50000;

static void put(long v)
{
    pthread_mutex_lock(&buf_lock);
    while (count == SLOTS)
        pthread_cond_wait(&not_full, &buf_lock);
    slots[(head + count++) % SLOTS] = v;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&buf_lock);
}

static long take(void)
{
    pthread_mutex_lock(&buf_lock);
    while (count == 0)
        pthread_cond_wait(&not_empty, &buf_lock);
    long v = slots[head];
    head = (head + 1) % SLOTS;
    count--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&buf_lock);
    return v;
}

static void *producer(void *arg)
{
    long id = (long)arg;
    for (long i = 1; i <= items; i++)
        put(id * 1000003 + i);
    return NULL;
}

static void *consumer(void *arg)
{
    long *sum = arg, v;
    while ((v = take()) != -1)
        *sum += v;
    return NULL;
}

static void bounded_buffer(int np, int nc)
{
    pthread_t p[np], c[nc];
    long sums[nc];
    for (int i = 0; i < nc; i++) {
        sums[i] = 0;
        pthread_create(&c[i], NULL, consumer, &sums[i]);
    }
    for (long i = 0; i < np; i++)
        pthread_create(&p[i], NULL, producer, (void *)i);
    for (int i = 0; i < np; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < nc; i++)
        put(-1);
    long total = 0;
    for (int i = 0; i < nc; i++) {
        pthread_join(c[i], NULL);
        total += sums[i];
    }
    printf("bounded buffer: %d producers x %ld items, %d consumers, checksum %ld\n", np, items, nc,
           total);
}

/* ---- many waiters, broadcast and signal ---------------------------------- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t arrived_cond = PTHREAD_COND_INITIALIZER;
static int arrived, released, passed, generation;

static void *gate_waiter(void *arg)
{
    pthread_mutex_lock(&gate_lock);
    int gen = generation;
    arrived++;
    pthread_cond_signal(&arrived_cond);
    while (gen == generation && !released)
        pthread_cond_wait(&gate_cond, &gate_lock);
    if (released)
        released--;
    passed++;
    pthread_cond_signal(&arrived_cond);
    pthread_mutex_unlock(&gate_lock);
    return arg;
}

static void wait_arrivals(int n)
{
    while (arrived < n)
        pthread_cond_wait(&arrived_cond, &gate_lock);
}

static void gate(int n)
{
    pthread_t t[n];
    arrived = passed = released = 0;
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, gate_waiter, NULL);
    pthread_mutex_lock(&gate_lock);
    wait_arrivals(n);
    /* release them one at a time with signal, then the rest by broadcast */
    for (int i = 0; i < n / 2; i++) {
        released++;
        pthread_cond_signal(&gate_cond);
        while (passed < i + 1)
            pthread_cond_wait(&arrived_cond, &gate_lock);
    }
    generation++;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("gate: %d waiters, %d passed\n", n, passed);
}

/* ---- timed waits ---------------------------------------------------------- */

static long long ns_of(const struct timespec *ts)
{
    return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

#define LATE_MS 2000

static void report_time(const char *what, clockid_t clock, const struct timespec *abs)
{
    struct timespec now;
    clock_gettime(clock, &now);
    long long late = ns_of(&now) - ns_of(abs);
    if (late < 0 || late > LATE_MS * 1000000LL)
        printf("FAIL %s: returned %lld ns after the deadline\n", what, late);
    else
        printf("ok %s not early, bounded lateness\n", what);
}

enum how { TIMEDWAIT, CLOCKWAIT };

static void timed(const char *what, bool monotonic_attr, enum how how, clockid_t clock)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    if (monotonic_attr)
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t c;
    pthread_cond_init(&c, &ca);
    pthread_mutex_t m = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    pthread_mutex_lock(&m);
    for (int i = 0; i < 3; i++) {
        struct timespec abs = in_ms(clock, 20 + 40 * i);
        int r = how == TIMEDWAIT ? pthread_cond_timedwait(&c, &m, &abs)
                                 : pthread_cond_clockwait(&c, &m, clock, &abs);
        check(what, r, ETIMEDOUT);
        report_time(what, clock, &abs);
    }
    struct timespec bad = {0, -1};
    check("bad tv_nsec EINVAL",
          how == TIMEDWAIT ? pthread_cond_timedwait(&c, &m, &bad)
                           : pthread_cond_clockwait(&c, &m, clock, &bad),
          EINVAL);
    struct timespec past = {-5, 0};
    check("negative deadline ETIMEDOUT",
          how == TIMEDWAIT ? pthread_cond_timedwait(&c, &m, &past)
                           : pthread_cond_clockwait(&c, &m, clock, &past),
          ETIMEDOUT);
    /* the errorcheck mutex says whether the wait gave it back */
    check("mutex held again after time-outs", pthread_mutex_unlock(&m), 0);
    struct timespec soon = in_ms(CLOCK_REALTIME, 10);
    pthread_mutex_lock(&m);
    check("clockwait bad clock EINVAL",
          pthread_cond_clockwait(&c, &m, CLOCK_THREAD_CPUTIME_ID, &soon), EINVAL);
    pthread_mutex_unlock(&m);
    check("cond destroy", pthread_cond_destroy(&c), 0);
    pthread_condattr_destroy(&ca);
}

/* A waiter with a long time-out is signalled well before it. */
static pthread_mutex_t early_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t early_cond = PTHREAD_COND_INITIALIZER;
static bool early_flag;

static void *signal_soon(void *arg)
{
    struct timespec d = {0, 30000000};
    nanosleep(&d, NULL);
    pthread_mutex_lock(&early_lock);
    early_flag = true;
    pthread_cond_signal(&early_cond);
    pthread_mutex_unlock(&early_lock);
    return arg;
}

static void signalled_before_timeout(void)
{
    pthread_t t;
    pthread_mutex_lock(&early_lock);
    pthread_create(&t, NULL, signal_soon, NULL);
    struct timespec abs = in_ms(CLOCK_REALTIME, 20000);
    int r = 0;
    while (!early_flag && r == 0)
        r = pthread_cond_timedwait(&early_cond, &early_lock, &abs);
    check("timedwait signalled before its deadline", r, 0);
    pthread_mutex_unlock(&early_lock);
    pthread_join(t, NULL);
}

/* ---- C11 --------------------------------------------------------------- */

static mtx_t c11_lock;
static cnd_t c11_cond;
static int c11_turn, c11_rounds = 2000;

static int c11_player(void *arg)
{
    int me = (int)(long)arg;
    for (int i = 0; i < c11_rounds; i++) {
        mtx_lock(&c11_lock);
        while (c11_turn % 2 != me)
            cnd_wait(&c11_cond, &c11_lock);
        c11_turn++;
        cnd_broadcast(&c11_cond);
        mtx_unlock(&c11_lock);
    }
    return 0;
}

static void c11(void)
{
    mtx_init(&c11_lock, mtx_timed);
    cnd_init(&c11_cond);
    thrd_t a, b;
    thrd_create(&a, c11_player, (void *)0L);
    thrd_create(&b, c11_player, (void *)1L);
    thrd_join(a, NULL);
    thrd_join(b, NULL);
    printf("c11 ping-pong: %d turns\n", c11_turn);
    mtx_lock(&c11_lock);
    struct timespec abs = in_ms(CLOCK_REALTIME, 30);
    check("cnd_timedwait thrd_timedout", cnd_timedwait(&c11_cond, &c11_lock, &abs), thrd_timedout);
    report_time("cnd_timedwait", CLOCK_REALTIME, &abs);
    mtx_unlock(&c11_lock);
    cnd_signal(&c11_cond);
    mtx_lock(&c11_lock);
    check("mtx_trylock on a held mtx_timed thrd_busy", mtx_trylock(&c11_lock), thrd_busy);
    abs = in_ms(CLOCK_REALTIME, 30);
    check("mtx_timedlock on a held mutex thrd_timedout", mtx_timedlock(&c11_lock, &abs),
          thrd_timedout);
    report_time("mtx_timedlock", CLOCK_REALTIME, &abs);
    mtx_unlock(&c11_lock);
    mtx_destroy(&c11_lock);
    cnd_destroy(&c11_cond);
}

int main(int argc, char **argv)
{
    int np = 4, nc = 4, waiters = 200;
    if (argc > 3) {
        np = atoi(argv[1]);
        nc = atoi(argv[2]);
        items = atol(argv[3]);
    }
    if (argc > 4)
        waiters = atoi(argv[4]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    bounded_buffer(np, nc);
    bounded_buffer(1, 1);
    gate(waiters);
    timed("timedwait realtime", false, TIMEDWAIT, CLOCK_REALTIME);
    timed("timedwait monotonic attr", true, TIMEDWAIT, CLOCK_MONOTONIC);
    timed("clockwait monotonic", false, CLOCKWAIT, CLOCK_MONOTONIC);
    timed("clockwait realtime on monotonic cond", true, CLOCKWAIT, CLOCK_REALTIME);
    signalled_before_timeout();
    c11();
    return 0;
}
