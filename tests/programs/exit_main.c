// exit_main: main calls pthread_exit while 8 threads still sleep.  Proves the
// process lives on until the last thread ends, then exits with status 0,
// running atexit handlers and flushing stdio.  The last thread prints the total.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 8

static atomic_int finished;
static atomic_long total;

static void at_exit(void)
{
    printf("atexit ran, %d threads had finished\n", atomic_load(&finished));
}

static void *worker(void *arg)
{
    long k = (long)(intptr_t)arg;
    usleep(100000 + 25000 * k); // 100..275 ms
    atomic_fetch_add(&total, 10 * (k + 1));
    if (atomic_fetch_add(&finished, 1) + 1 == NTHREADS)
        printf("last thread: %d threads done, total %ld\n", NTHREADS, atomic_load(&total));
    return NULL;
}

int main(void)
{
    alarm(60);
    atexit(at_exit);
    printf("main: starting %d threads\n", NTHREADS);
    for (long k = 0; k < NTHREADS; k++) {
        pthread_t tid;
        int err = pthread_create(&tid, NULL, worker, (void *)(intptr_t)k);
        if (err) {
            fprintf(stderr, "create failed at %ld: %s\n", k, strerror(err));
            return 1;
        }
    }
    pthread_exit(NULL);
}
