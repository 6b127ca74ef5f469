/* A killer that interrupts threads sleeping in timed condition waits, the
 * way MariaDB's KILL and shutdown do (THD::awake_no_mutex).
 *
 * N sleepers wait up to 60 s each on their own condition variable, all
 * under one shared mutex (MariaDB's LOCK_item_func_sleep).  The killer
 * takes a sleeper's own mutex (its mysys_var->mutex), sets its flag,
 * trylocks the shared mutex, broadcasts, and if the trylock failed naps
 * 50 ms and tries again, up to 20 times.  A woken sleeper needs the shared
 * mutex back to leave its wait, then its own mutex.  Natively the woken
 * sleeper runs on another CPU at once and the trylock soon succeeds;
 * fiberized, a sleeper woken by the killer must not be left waiting behind
 * the killer's carrier, or every sleeper costs the killer a full second of
 * naps and the rest sleep their full 60 s.
 *
 * Prints how many sleepers were interrupted and how many timed out (the
 * same natively and fiberized); the elapsed time goes to stderr, for the
 * suite to compare with the native run.
 *
 *   kill_waiters [SLEEPERS] [ROUNDS]
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WAIT_S 60
#define TRY_TIMES 20
#define NAP_NS (1000000000L / TRY_TIMES)

struct sleeper {
    pthread_t thread;
    pthread_mutex_t own; /* the per-victim kill mutex */
    pthread_cond_t cond;
    int killed;    /* under own (read under shared by the sleeper, as MariaDB) */
    int waiting;   /* under shared: registered its condition wait */
    int timed_out; /* written by the sleeper before it exits */
};

static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_waiting = PTHREAD_COND_INITIALIZER;
static int nwaiting;

static int slice_ms = 100;
static long kill_offset_us = 0;

static void add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += ms % 1000 * 1000000;
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000;
    }
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* MariaDB's Interruptible_wait: the wait is cut into slices; after each
 * slice that times out the sleeper checks its connection, which takes its
 * own mutex while it still holds the shared one. */
static struct timespec grid; /* every sleeper's slices end on this grid */

static int sliced_wait(struct sleeper *s, const struct timespec *end)
{
    struct timespec slice = grid;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        while (!before(&now, &slice))
            add_ms(&slice, slice_ms);
        if (!before(&slice, end))
            slice = *end;
        int r = pthread_cond_timedwait(&s->cond, &shared, &slice);
        if (r != ETIMEDOUT)
            return r;
        if (!before(&slice, end))
            return ETIMEDOUT;
        pthread_mutex_lock(&s->own);
        int gone = __atomic_load_n(&s->killed, __ATOMIC_ACQUIRE);
        pthread_mutex_unlock(&s->own);
        if (gone)
            return 0;
    }
}

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += WAIT_S;
    pthread_mutex_lock(&shared);
    s->waiting = 1;
    nwaiting++;
    pthread_cond_signal(&all_waiting);
    while (!__atomic_load_n(&s->killed, __ATOMIC_ACQUIRE)) {
        if (sliced_wait(s, &end) == ETIMEDOUT) {
            s->timed_out = 1;
            break;
        }
    }
    s->waiting = 0;
    pthread_mutex_unlock(&shared);
    /* MariaDB clears its mysys_var->current_mutex/cond under its own mutex,
     * which the killer may still hold. */
    pthread_mutex_lock(&s->own);
    pthread_mutex_unlock(&s->own);
    return NULL;
}

/* One victim, as THD::awake_no_mutex: returns how many trylocks failed. */
static int kill_one(struct sleeper *s)
{
    int failed = 0;
    pthread_mutex_lock(&s->own);
    __atomic_store_n(&s->killed, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < TRY_TIMES; i++) {
        int r = pthread_mutex_trylock(&shared);
        pthread_cond_broadcast(&s->cond);
        if (r == 0) {
            pthread_mutex_unlock(&shared);
            break;
        }
        failed++;
        struct timespec nap = {0, NAP_NS};
        nanosleep(&nap, NULL);
    }
    pthread_mutex_unlock(&s->own);
    return failed;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 50;
    int rounds = argc > 2 ? atoi(argv[2]) : 1;
    if (argc > 3)
        slice_ms = atoi(argv[3]);
    if (argc > 4)
        kill_offset_us = atol(argv[4]);
    if (n < 1 || rounds < 1) {
        fprintf(stderr, "usage: kill_waiters [SLEEPERS] [ROUNDS]\n");
        return 2;
    }
    struct sleeper *s = calloc(n, sizeof *s);
    if (!s)
        return 1;
    double start = now_s();
    int interrupted = 0, timed_out = 0, failed_tries = 0;
    for (int round = 0; round < rounds; round++) {
        nwaiting = 0;
        clock_gettime(CLOCK_REALTIME, &grid);
        for (int i = 0; i < n; i++) {
            pthread_mutex_init(&s[i].own, NULL);
            pthread_cond_init(&s[i].cond, NULL);
            s[i].killed = s[i].waiting = s[i].timed_out = 0;
            if (pthread_create(&s[i].thread, NULL, sleeper_main, &s[i])) {
                perror("pthread_create");
                return 1;
            }
        }
        pthread_mutex_lock(&shared);
        while (nwaiting < n)
            pthread_cond_wait(&all_waiting, &shared);
        pthread_mutex_unlock(&shared);
        /* start killing as the sleepers' slices end together */
        struct timespec now, at = grid;
        clock_gettime(CLOCK_REALTIME, &now);
        while (!before(&now, &at))
            add_ms(&at, slice_ms);
        at.tv_nsec += kill_offset_us * 1000;
        if (at.tv_nsec >= 1000000000) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000;
        }
        clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL);
        for (int i = 0; i < n; i++)
            failed_tries += kill_one(&s[i]);
        for (int i = 0; i < n; i++) {
            pthread_join(s[i].thread, NULL);
            if (s[i].timed_out)
                timed_out++;
            else
                interrupted++;
            pthread_mutex_destroy(&s[i].own);
            pthread_cond_destroy(&s[i].cond);
        }
    }
    printf("%d sleepers x %d rounds: %d interrupted, %d timed out\n", n, rounds, interrupted,
           timed_out);
    fprintf(stderr, "kill_waiters: %.3f s, %d failed trylocks\n", now_s() - start, failed_tries);
    free(s);
    return timed_out != 0;
}
