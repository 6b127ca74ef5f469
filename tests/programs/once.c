// once: 64 threads race into pthread_once, and 64 into C11 call_once, on one
// control each whose init routine sleeps 50 ms.  Proves the routine runs
// exactly once and that every caller returns only after it has finished.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>
#include <unistd.h>

#define NTHREADS 64

static pthread_once_t p_once = PTHREAD_ONCE_INIT;
static once_flag c_once = ONCE_FLAG_INIT;
static atomic_int p_runs, p_finished, c_runs, c_finished;
static atomic_int early; // callers that returned before init had finished

static void p_init(void)
{
    atomic_fetch_add(&p_runs, 1);
    usleep(50000);
    atomic_store(&p_finished, 1);
}

static void c_init(void)
{
    atomic_fetch_add(&c_runs, 1);
    usleep(50000);
    atomic_store(&c_finished, 1);
}

static void *p_caller(void *arg)
{
    int err = pthread_once(&p_once, p_init);
    if (err || !atomic_load(&p_finished) || atomic_load(&p_runs) != 1)
        atomic_fetch_add(&early, 1);
    return NULL;
}

static void *c_caller(void *arg)
{
    call_once(&c_once, c_init);
    if (!atomic_load(&c_finished) || atomic_load(&c_runs) != 1)
        atomic_fetch_add(&early, 1);
    return NULL;
}

static void run_all(void *(*fn)(void *))
{
    pthread_t tids[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        int err = pthread_create(&tids[i], NULL, fn, NULL);
        if (err) {
            fprintf(stderr, "create failed at %d: %s\n", i, strerror(err));
            exit(1);
        }
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(tids[i], NULL);
}

int main(void)
{
    alarm(60);
    run_all(p_caller);
    pthread_once(&p_once, p_init); // completed: must not run again
    printf("pthread_once: init ran %d time(s) for %d threads\n", atomic_load(&p_runs), NTHREADS);
    run_all(c_caller);
    call_once(&c_once, c_init);
    printf("call_once: init ran %d time(s) for %d threads\n", atomic_load(&c_runs), NTHREADS);
    printf("callers that returned before init finished: %d\n", atomic_load(&early));
    if (atomic_load(&p_runs) != 1 || atomic_load(&c_runs) != 1 || atomic_load(&early) != 0) {
        fprintf(stderr, "once semantics violated\n");
        return 1;
    }
    return 0;
}
