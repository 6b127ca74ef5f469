// many_sleepers [N]: N threads (default 100000) with default attributes, all
// alive at once, each sleeping three staggered ~100-150 ms naps.  Proves that
// sleeping threads cost no OS thread; prints the sum of their results.
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAPS 3

static atomic_long started;
static long nthreads;

static uint64_t result_of(long i, int nap)
{
    return (uint64_t)(i % 1000) * (nap + 1);
}

static void *sleeper(void *arg)
{
    long i = (long)(intptr_t)arg;
    uint64_t sum = 0;
    atomic_fetch_add(&started, 1);
    for (int nap = 0; nap < NAPS; nap++) {
        usleep(100000 + (i % 100) * 500);
        sum += result_of(i, nap);
    }
    // Nobody leaves before everyone has been created: all N are alive at once.
    // The wait backs off so that slow creation does not cause a wake-up storm.
    for (useconds_t wait = 50000; atomic_load(&started) < nthreads;) {
        usleep(wait);
        wait = wait < 500000 ? 2 * wait : 1000000;
    }
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv)
{
    nthreads = argc > 1 ? atol(argv[1]) : 100000;
    pthread_t *tids = calloc(nthreads > 0 ? nthreads : 1, sizeof *tids);
    uint64_t sum = 0, want = 0;
    alarm(60);
    if (!tids) {
        perror("calloc");
        return 1;
    }
    for (long i = 0; i < nthreads; i++) {
        int err = pthread_create(&tids[i], NULL, sleeper, (void *)(intptr_t)i);
        if (err) {
            fprintf(stderr, "create failed at %ld: %s\n", i, strerror(err));
            exit(1);
        }
    }
    for (long i = 0; i < nthreads; i++) {
        void *ret;
        int err = pthread_join(tids[i], &ret);
        if (err) {
            fprintf(stderr, "join failed at %ld: %s\n", i, strerror(err));
            exit(1);
        }
        sum += (uintptr_t)ret;
        for (int nap = 0; nap < NAPS; nap++)
            want += result_of(i, nap);
    }
    if (sum != want) {
        fprintf(stderr, "sum %llu, expected %llu\n", (unsigned long long)sum,
                (unsigned long long)want);
        return 1;
    }
    printf("%ld sleepers, sum %llu\n", nthreads, (unsigned long long)sum);
    free(tids);
    return 0;
}
