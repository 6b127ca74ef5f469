/* Fibers and threads that are not fibers on one mutex and condition variable.
 *
 * Under fiberize every pthread_create makes a fiber, so the threads that are
 * not fibers come from glibc itself: timer_create(SIGEV_THREAD) starts its
 * helper thread and one thread per expiry with glibc's internal
 * pthread_create, which no preloaded library sees -- ordinary OS threads,
 * as a library's private worker would be.  They and the fibers count on
 * one mutex (exact total) and wait for each other on one condition variable.
 * With "pi" the mutex is priority-inheriting: glibc's own code, which
 * hands owners' tids to the kernel, and a fiber owner's is not one it knows.
 * Usage: sync_mixed [iterations [pi]]   (default 100000) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TIMERS 3
#define FIBERS 8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static long iterations = 100000;
static long counter;
static int callbacks_counted, fibers_counted, acknowledged, ready;

/* Everybody starts counting together, so fibers and OS threads contend. */
static void start_together(void)
{
    pthread_mutex_lock(&lock);
    ready++;
    pthread_cond_broadcast(&changed);
    while (ready < TIMERS + FIBERS)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void count(void)
{
    start_together();
    for (long i = 0; i < iterations; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
}

/* Runs on a thread glibc made for the timer expiry. */
static void on_timer(union sigval v)
{
    (void)v;
    count();
    pthread_mutex_lock(&lock);
    callbacks_counted++;
    pthread_cond_broadcast(&changed);
    /* wait for a fiber's acknowledgement: a cond wait on an OS thread */
    while (acknowledged < callbacks_counted)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void *fiber(void *arg)
{
    count();
    pthread_mutex_lock(&lock);
    fibers_counted++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    return arg;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        iterations = atol(argv[1]);
    if (argc > 2 && argv[2][0] == 'p') {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
        pthread_mutex_init(&lock, &a);
    }
    timer_t timers[TIMERS];
    for (int i = 0; i < TIMERS; i++) {
        struct sigevent ev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_timer};
        if (timer_create(CLOCK_MONOTONIC, &ev, &timers[i])) {
            perror("timer_create");
            return 1;
        }
        struct itimerspec when = {.it_value = {0, 1000000 * (i + 1)}};
        timer_settime(timers[i], 0, &when, NULL);
    }
    pthread_t t[FIBERS];
    for (int i = 0; i < FIBERS; i++)
        pthread_create(&t[i], NULL, fiber, NULL);
    /* acknowledge each callback as it arrives, until all have counted */
    pthread_mutex_lock(&lock);
    while (acknowledged < TIMERS || fibers_counted < FIBERS) {
        if (acknowledged < callbacks_counted) {
            acknowledged++;
            pthread_cond_broadcast(&changed);
            continue;
        }
        pthread_cond_wait(&changed, &lock);
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < FIBERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < TIMERS; i++)
        timer_delete(timers[i]);
    printf("%d timer threads and %d threads x %ld = %ld\n", TIMERS, FIBERS, iterations, counter);
    return 0;
}
