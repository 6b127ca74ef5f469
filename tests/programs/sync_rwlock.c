/* pthread rwlocks: readers overlap, writers exclude, the writer-preferring
 * kind holds back new readers, try/timed/error results, and a thread
 * blocked in wrlock does not stop the others.
 *
 * usage: sync_rwlock readers|writers|prefer|errors|park|timed|timed-wnr
 * Threads synchronise with atomics and sleeps only, so that nothing but
 * the rwlock under test decides who waits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "libc_compat.h"
#include "timed_wait.h"

static void check(const char *what, int got, int want)
{
    printf("%s: %s\n", what, got == want ? "ok" : "WRONG");
    if (got != want)
        fprintf(stderr, "%s: got %d (%s), want %d\n", what, got, strerror(got), want);
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg))
        exit(2);
    return t;
}

/* ---- readers: all N inside at once ----------------------------------- */

#define READERS 8
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int inside, most_inside;

static void *reader_waiting_for_all(void *arg)
{
    (void)arg;
    pthread_rwlock_rdlock(&lock);
    int n = atomic_fetch_add(&inside, 1) + 1;
    long long give_up = now_ns(CLOCK_MONOTONIC) + 10000000000LL;
    while (n < READERS && now_ns(CLOCK_MONOTONIC) < give_up) {
        usleep(1000);
        n = atomic_load(&inside);
    }
    int m = atomic_load(&most_inside);
    while (n > m && !atomic_compare_exchange_weak(&most_inside, &m, n))
        ;
    pthread_rwlock_unlock(&lock);
    return NULL;
}

static void readers(void)
{
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        t[i] = spawn(reader_waiting_for_all, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    printf("readers inside at once: %d of %d\n", atomic_load(&most_inside), READERS);
}

/* ---- writers exclude everyone ---------------------------------------- */

#define ITERS 20000
static long value;
static atomic_int writer_inside, readers_inside, violations;

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_rwlock_wrlock(&lock);
        if (atomic_fetch_add(&writer_inside, 1) != 0 || atomic_load(&readers_inside) != 0)
            atomic_fetch_add(&violations, 1);
        value++;
        if (i % 256 == 0)
            sched_yield(); /* let others try while we hold it */
        value++;
        atomic_fetch_sub(&writer_inside, 1);
        pthread_rwlock_unlock(&lock);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_rwlock_rdlock(&lock);
        atomic_fetch_add(&readers_inside, 1);
        if (atomic_load(&writer_inside) != 0 || value % 2 != 0)
            atomic_fetch_add(&violations, 1);
        atomic_fetch_sub(&readers_inside, 1);
        pthread_rwlock_unlock(&lock);
    }
    return NULL;
}

static void writers(void)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = spawn(i % 2 ? reader : writer, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    printf("value %ld (want %d), violations %d\n", value, 2 * 4 * ITERS, atomic_load(&violations));
}

/* ---- timed waiters giving up beside untimed ones --------------------- */

/* Waiters whose 100 µs timeouts keep expiring while others wait without
 * one: a wake-up lost to a waiter that gave up would leave an untimed
 * waiter asleep for good (the alarm ends the run).  Counts stay exact. */
static atomic_long timed_writes;

static void *mixed_waiter(void *arg)
{
    long kind = (long)arg; /* bit 0: writer, bit 1: timed */
    for (int i = 0; i < ITERS; i++) {
        int r;
        if (kind & 2) {
            struct timespec t = in_ms(CLOCK_MONOTONIC, 0);
            t.tv_nsec += 100000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            r = kind & 1 ? pthread_rwlock_clockwrlock(&lock, CLOCK_MONOTONIC, &t)
                         : pthread_rwlock_clockrdlock(&lock, CLOCK_MONOTONIC, &t);
            if (r == ETIMEDOUT)
                continue;
        } else {
            r = kind & 1 ? pthread_rwlock_wrlock(&lock) : pthread_rwlock_rdlock(&lock);
        }
        if (r != 0)
            exit(5);
        if (kind & 1) {
            if (atomic_fetch_add(&writer_inside, 1) != 0 || atomic_load(&readers_inside) != 0)
                atomic_fetch_add(&violations, 1);
            value++;
            if (kind & 2)
                atomic_fetch_add(&timed_writes, 1);
            else if (i % 32 == 0) /* hold it long enough for timeouts */
                for (long long end = now_ns(CLOCK_MONOTONIC) + 200000;
                     now_ns(CLOCK_MONOTONIC) < end;)
                    ;
            atomic_fetch_sub(&writer_inside, 1);
        } else {
            atomic_fetch_add(&readers_inside, 1);
            if (atomic_load(&writer_inside) != 0)
                atomic_fetch_add(&violations, 1);
            if (i % 64 == 0)
                sched_yield();
            atomic_fetch_sub(&readers_inside, 1);
        }
        pthread_rwlock_unlock(&lock);
    }
    return NULL;
}

static void timed(pthread_rwlock_t *rw)
{
    lock = *rw;
    pthread_t t[8];
    for (long i = 0; i < 8; i++)
        t[i] = spawn(mixed_waiter, (void *)(i % 4));
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    long untimed = 2 * ITERS;
    fprintf(stderr, "timed writes %ld\n", atomic_load(&timed_writes));
    printf("untimed and timed writes add up: %s, violations %d, free after: %s\n",
           value == untimed + atomic_load(&timed_writes) ? "yes" : "NO", atomic_load(&violations),
           pthread_rwlock_trywrlock(&lock) == 0 ? "yes" : "NO");
}

/* ---- kinds: who gets in while a writer waits ------------------------- */

static char order[8];
static atomic_int order_len;

static void note(char c)
{
    order[atomic_fetch_add(&order_len, 1)] = c;
}

static void *waiting_writer(void *arg)
{
    pthread_rwlock_wrlock(arg);
    note('W');
    pthread_rwlock_unlock(arg);
    return NULL;
}

static void *late_reader(void *arg)
{
    pthread_rwlock_rdlock(arg);
    note('R');
    pthread_rwlock_unlock(arg);
    return NULL;
}

/* Hold a read lock, let a writer queue up, then see whether a second read
 * lock (ours, by try, and another thread's) gets in before the writer. */
static void who_goes_first(const char *name, pthread_rwlock_t *rw)
{
    atomic_store(&order_len, 0);
    memset(order, 0, sizeof order);
    pthread_rwlock_rdlock(rw);
    pthread_t w = spawn(waiting_writer, rw);
    usleep(200000);
    int try = pthread_rwlock_tryrdlock(rw);
    if (try == 0)
        pthread_rwlock_unlock(rw);
    pthread_t r = spawn(late_reader, rw);
    usleep(200000);
    note('u');
    pthread_rwlock_unlock(rw);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    printf("%s: tryrdlock while a writer waits -> %s; order %s\n", name,
           try == 0       ? "0"
           : try == EBUSY ? "EBUSY"
                          : "other",
           order);
}

static void *giving_up_writer(void *arg)
{
    struct timespec t = in_ms(CLOCK_REALTIME, 200);
    int r = pthread_rwlock_timedwrlock(arg, &t);
    if (r == 0)
        pthread_rwlock_unlock(arg);
    return (void *)(long)r;
}

/* A writer holding back a reader gives up: the reader gets in at once,
 * while we still hold our read lock. */
static void writer_gives_up(const char *name, pthread_rwlock_t *rw)
{
    atomic_store(&order_len, 0);
    memset(order, 0, sizeof order);
    pthread_rwlock_rdlock(rw);
    pthread_t w = spawn(giving_up_writer, rw);
    usleep(50000);
    pthread_t r = spawn(late_reader, rw);
    usleep(600000);
    note('u');
    pthread_rwlock_unlock(rw);
    void *wr;
    pthread_join(w, &wr);
    pthread_join(r, NULL);
    printf("%s: a waiting writer times out (%s); order %s\n", name,
           (long)wr == ETIMEDOUT ? "ETIMEDOUT" : "WRONG", order);
}

static void prefer(void)
{
    pthread_rwlock_t deflt = PTHREAD_RWLOCK_INITIALIZER;
    pthread_rwlock_t wnr = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    who_goes_first("default", &deflt);
    who_goes_first("writer-nonrecursive initializer", &wnr);
    writer_gives_up("writer-nonrecursive initializer", &wnr);

    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlock_t by_attr;
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&by_attr, &a);
    who_goes_first("writer-nonrecursive attr", &by_attr);
    pthread_rwlock_destroy(&by_attr);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NP);
    pthread_rwlock_init(&by_attr, &a);
    who_goes_first("prefer-writer attr", &by_attr);
    pthread_rwlock_destroy(&by_attr);
}

/* ---- errors and timeouts --------------------------------------------- */

static atomic_int holder_state; /* 1: holding, 2: release now */

static void *hold_write_until_told(void *arg)
{
    pthread_rwlock_wrlock(arg);
    atomic_store(&holder_state, 1);
    while (atomic_load(&holder_state) != 2)
        usleep(1000);
    pthread_rwlock_unlock(arg);
    return NULL;
}

static void *hold_write_100ms(void *arg)
{
    pthread_rwlock_wrlock(arg);
    atomic_store(&holder_state, 1);
    usleep(100000);
    pthread_rwlock_unlock(arg);
    return NULL;
}

/* A wait that should have timed out: did it, and not early (timed_wait.h)? */
static void timed_out_not_early(const char *what, int r, long long start, clockid_t clock,
                                const struct timespec *deadline, long ms)
{
    long long took = now_ns(CLOCK_MONOTONIC) - start;
    int early = timed_out_early(start, ms, clock, deadline);
    printf("%s: %s\n", what,
           r != ETIMEDOUT               ? "WRONG result"
           : early                      ? "EARLY"
           : took > ms * 1000000LL * 50 ? "far too late"
                                        : "ETIMEDOUT, not early");
    if (r != ETIMEDOUT || early)
        fprintf(stderr, "%s: %d after %lld ns\n", what, r, took);
}

static void errors(void)
{
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    struct timespec later = in_ms(CLOCK_REALTIME, 1000);
    struct timespec bad = {0, 1000000000}, neg = {0, -1};

    check("wrlock", pthread_rwlock_wrlock(&rw), 0);
    check("wrlock again by the owner", pthread_rwlock_wrlock(&rw), EDEADLK);
    check("rdlock by the write owner", pthread_rwlock_rdlock(&rw), EDEADLK);
    check("timedwrlock by the owner", pthread_rwlock_timedwrlock(&rw, &later), EDEADLK);
    check("tryrdlock while write-locked", pthread_rwlock_tryrdlock(&rw), EBUSY);
    check("trywrlock while write-locked", pthread_rwlock_trywrlock(&rw), EBUSY);
    check("timedrdlock bad nsec by owner", pthread_rwlock_timedrdlock(&rw, &bad), EINVAL);
    check("unlock", pthread_rwlock_unlock(&rw), 0);

    check("rdlock", pthread_rwlock_rdlock(&rw), 0);
    check("rdlock recursively", pthread_rwlock_rdlock(&rw), 0);
    check("trywrlock while read-locked", pthread_rwlock_trywrlock(&rw), EBUSY);
    check("tryrdlock while read-locked", pthread_rwlock_tryrdlock(&rw), 0);
    for (int i = 0; i < 3; i++)
        pthread_rwlock_unlock(&rw);
    check("trywrlock when free", pthread_rwlock_trywrlock(&rw), 0);
    check("unlock", pthread_rwlock_unlock(&rw), 0);

    check("timedrdlock nsec 1e9 on a free lock", pthread_rwlock_timedrdlock(&rw, &bad), EINVAL);
    check("timedwrlock nsec -1 on a free lock", pthread_rwlock_timedwrlock(&rw, &neg), EINVAL);
    check("clockrdlock CPU clock",
          pthread_rwlock_clockrdlock(&rw, CLOCK_PROCESS_CPUTIME_ID, &later), EINVAL);
    check("clockwrlock MONOTONIC free",
          pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &(struct timespec){0, 0}), 0);
    pthread_rwlock_unlock(&rw);

    /* another thread holds it for writing */
    atomic_store(&holder_state, 0);
    pthread_t h = spawn(hold_write_until_told, &rw);
    while (atomic_load(&holder_state) != 1)
        usleep(1000);
    long long start = now_ns(CLOCK_MONOTONIC);
    struct timespec t = in_ms(CLOCK_REALTIME, 200);
    timed_out_not_early("timedrdlock 200ms", pthread_rwlock_timedrdlock(&rw, &t), start,
                        CLOCK_REALTIME, &t, 200);
    start = now_ns(CLOCK_MONOTONIC);
    t = in_ms(CLOCK_MONOTONIC, 150);
    timed_out_not_early("clockwrlock MONOTONIC 150ms",
                        pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &t), start,
                        CLOCK_MONOTONIC, &t, 150);
    check("timedwrlock in the past", pthread_rwlock_timedwrlock(&rw, &(struct timespec){0, 0}),
          ETIMEDOUT);
    check("clockrdlock MONOTONIC negative sec",
          pthread_rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &(struct timespec){-1, 0}), ETIMEDOUT);
    check("rdlock by a non-owner is no EDEADLK", pthread_rwlock_tryrdlock(&rw), EBUSY);
    atomic_store(&holder_state, 2);
    pthread_join(h, NULL);

    /* released while we wait */
    atomic_store(&holder_state, 0);
    h = spawn(hold_write_100ms, &rw);
    while (atomic_load(&holder_state) != 1)
        usleep(1000);
    t = in_ms(CLOCK_REALTIME, 10000);
    check("timedwrlock released in time", pthread_rwlock_timedwrlock(&rw, &t), 0);
    pthread_rwlock_unlock(&rw);
    pthread_join(h, NULL);
    check("unlock of an unlocked lock", pthread_rwlock_unlock(&rw), 0);
    check("destroy", pthread_rwlock_destroy(&rw), 0);
}

/* ---- park: a blocked writer leaves its carrier to others ------------- */

static atomic_int other_steps;

static void *blocked_writer(void *arg)
{
    pthread_rwlock_wrlock(arg);
    pthread_rwlock_unlock(arg);
    return NULL;
}

static void *keeps_working(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        usleep(1000);
        atomic_fetch_add(&other_steps, 1);
    }
    return NULL;
}

static void park(void)
{
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    pthread_rwlock_rdlock(&rw);
    pthread_t w = spawn(blocked_writer, &rw);
    usleep(50000); /* the writer is blocked now */
    pthread_t o = spawn(keeps_working, NULL);
    pthread_join(o, NULL);
    printf("another thread ran %d steps while a writer waited\n", atomic_load(&other_steps));
    pthread_rwlock_unlock(&rw);
    pthread_join(w, NULL);
    printf("writer done\n");
}

int main(int argc, char **argv)
{
    alarm(60);
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "readers"))
        readers();
    else if (!strcmp(what, "writers"))
        writers();
    else if (!strcmp(what, "prefer"))
        prefer();
    else if (!strcmp(what, "errors"))
        errors();
    else if (!strcmp(what, "park"))
        park();
    else if (!strcmp(what, "timed"))
        timed(&(pthread_rwlock_t)PTHREAD_RWLOCK_INITIALIZER);
    else if (!strcmp(what, "timed-wnr"))
        timed(&(pthread_rwlock_t)PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP);
    else {
        fprintf(stderr, "usage: sync_rwlock readers|writers|prefer|errors|park|timed|timed-wnr\n");
        return 2;
    }
    return 0;
}
