/* A killer that interrupts threads sleeping in timed condition waits, the
 * way MariaDB's KILL and shutdown do (THD::abort_current_cond_wait).
 *
 * N sleepers wait up to 60 s each on their own condition variable, all
 * under one shared mutex (MariaDB's LOCK_item_func_sleep).  Back from a
 * wait, still holding the shared mutex, a sleeper reads its kill flag under
 * its own mutex (as MariaDB checks its connection after a wait slice).
 * The killer, for each sleeper in turn: takes the sleeper's own mutex
 * (LOCK_thd_kill), sets the flag, trylocks the shared mutex, broadcasts,
 * and if the trylock failed naps 50 ms and tries again, up to 20 times;
 * then it goes on with the rest of its work (WORK_US of computing) before
 * the next sleeper.
 *
 * A woken sleeper that takes the shared mutex while the killer holds its
 * own mutex blocks the killer's trylocks for a whole second, and the next
 * sleeper too if it is still waiting for the shared mutex then.  Natively a
 * woken sleeper runs on another CPU at once and is done long before the
 * killer's next trylock.  Fiberized, a sleeper woken by the killer (into
 * its carrier's LIFO slot) must not wait for the killer to give up its
 * carrier: if it did, every sleeper would cost a second.
 *
 * EARLY (1) wakes the first sleeper of each round before the killer's
 * first trylock (the killer signals it, then naps 1 ms holding its mutex),
 * as a MariaDB connection whose wait slice ended just as it was being
 * killed: that sleeper then holds the shared mutex through all 20 tries.
 * When the killer finally lets go of it, the sleeper still holds the
 * shared mutex; if it cannot run before the killer's next trylock, the
 * next sleeper is stuck the same way, and so on down the list (MariaDB's
 * shutdown under fiberize: a minute instead of seconds).
 *
 * Prints how many sleepers were interrupted and how many timed out (the
 * same natively and fiberized); stderr gets the time from the first kill to
 * the last join, which the suite compares with the native run's.
 *
 *   kill_waiters [SLEEPERS [ROUNDS [WORK_US [EARLY]]]]   (default 50 1 200 0)
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
    pthread_mutex_t own; /* the killer holds it while it kills this sleeper */
    pthread_cond_t cond;
    int killed;    /* under own */
    int timed_out; /* written by the sleeper before it exits */
};

static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_waiting = PTHREAD_COND_INITIALIZER;
static int nwaiting; /* under shared */
static long work_us = 200;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += WAIT_S;
    pthread_mutex_lock(&shared);
    nwaiting++;
    pthread_cond_signal(&all_waiting);
    for (;;) {
        int r = pthread_cond_timedwait(&s->cond, &shared, &end);
        pthread_mutex_lock(&s->own);
        int killed = s->killed;
        pthread_mutex_unlock(&s->own);
        if (killed)
            break;
        if (r == ETIMEDOUT) {
            s->timed_out = 1;
            break;
        }
    }
    pthread_mutex_unlock(&shared);
    return NULL;
}

/* One sleeper; returns how many trylocks failed. */
static int kill_one(struct sleeper *s, int early)
{
    int failed = 0;
    pthread_mutex_lock(&s->own);
    s->killed = 1;
    if (early) {
        pthread_cond_signal(&s->cond);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
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

/* The rest of a kill: the killer keeps its CPU (MariaDB's goes on through
 * its thread list, shutting sockets down and taking other locks). */
static void work(void)
{
    double until = now_s() + work_us / 1e6;
    while (now_s() < until)
        ;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 50;
    int rounds = argc > 2 ? atoi(argv[2]) : 1;
    if (argc > 3)
        work_us = atol(argv[3]);
    int early = argc > 4 ? atoi(argv[4]) : 0;
    if (n < 1 || rounds < 1 || work_us < 0) {
        fprintf(stderr, "usage: kill_waiters [SLEEPERS [ROUNDS [WORK_US [EARLY]]]]\n");
        return 2;
    }
    struct sleeper *s = calloc(n, sizeof *s);
    if (!s)
        return 1;
    double killing = 0;
    int interrupted = 0, timed_out = 0, failed_tries = 0;
    for (int round = 0; round < rounds; round++) {
        nwaiting = 0;
        for (int i = 0; i < n; i++) {
            pthread_mutex_init(&s[i].own, NULL);
            pthread_cond_init(&s[i].cond, NULL);
            s[i].killed = s[i].timed_out = 0;
            if (pthread_create(&s[i].thread, NULL, sleeper_main, &s[i])) {
                perror("pthread_create");
                return 1;
            }
        }
        pthread_mutex_lock(&shared);
        while (nwaiting < n)
            pthread_cond_wait(&all_waiting, &shared);
        pthread_mutex_unlock(&shared);
        double start = now_s();
        for (int i = 0; i < n; i++) {
            failed_tries += kill_one(&s[i], early && i == 0);
            work();
        }
        for (int i = 0; i < n; i++) {
            pthread_join(s[i].thread, NULL);
            if (s[i].timed_out)
                timed_out++;
            else
                interrupted++;
            pthread_mutex_destroy(&s[i].own);
            pthread_cond_destroy(&s[i].cond);
        }
        killing += now_s() - start;
    }
    printf("%d sleepers x %d rounds: %d interrupted, %d timed out\n", n, rounds, interrupted,
           timed_out);
    fprintf(stderr, "kill_waiters: %.3f s killing, %d failed trylocks\n", killing, failed_tries);
    free(s);
    return timed_out != 0;
}
