// detached: 1000 detached threads, half created detached through the
// attribute and half detached by pthread_detach after creation.  Each adds
// its index to an atomic total; main polls with nanosleep until all are done.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 1000

static atomic_long total;
static atomic_int done;

static void *worker(void *arg)
{
    long i = (long)(intptr_t)arg;
    if (i % 3 == 0)
        usleep(1000 * (i % 7)); // some are still running when main polls
    atomic_fetch_add(&total, i);
    atomic_fetch_add(&done, 1);
    return NULL;
}

static void check(int err, const char *what, long i)
{
    if (err) {
        fprintf(stderr, "%s failed at %ld: %s\n", what, i, strerror(err));
        exit(1);
    }
}

static void spawn(long i, const pthread_attr_t *detached_attr)
{
    pthread_t tid;
    if (i % 2 == 0) {
        check(pthread_create(&tid, detached_attr, worker, (void *)(intptr_t)i), "create", i);
    } else {
        check(pthread_create(&tid, NULL, worker, (void *)(intptr_t)i), "create", i);
        check(pthread_detach(tid), "pthread_detach", i);
    }
}

int main(void)
{
    pthread_attr_t attr;
    struct timespec tick = {0, 1000000};
    int state, polls = 0;
    alarm(60);
    check(pthread_attr_init(&attr), "attr_init", 0);
    check(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED), "setdetachstate", 0);
    check(pthread_attr_getdetachstate(&attr, &state), "getdetachstate", 0);
    if (state != PTHREAD_CREATE_DETACHED) {
        fprintf(stderr, "detach state not kept in the attribute\n");
        return 1;
    }
    for (long i = 0; i < NTHREADS; i++)
        spawn(i, &attr);
    pthread_attr_destroy(&attr);
    while (atomic_load(&done) < NTHREADS) {
        nanosleep(&tick, NULL);
        if (++polls > 30000) {
            fprintf(stderr, "only %d of %d threads finished\n", atomic_load(&done), NTHREADS);
            return 1;
        }
    }
    printf("%d detached threads done, total %ld\n", atomic_load(&done), atomic_load(&total));
    return 0;
}
