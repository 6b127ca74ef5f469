// spawn_join [N]: creates and joins N threads (default 10000), never more
// than 100 alive at once.  Proves that creation, argument passing, return
// values and join work at volume; prints a checksum of all return values.
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 100

// A cheap deterministic mix of the argument, also computed by main to check.
static uint64_t value_of(uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return x % 1000003;
}

static void *worker(void *arg)
{
    return (void *)(uintptr_t)value_of((uintptr_t)arg);
}

// Runs threads [first, first+count) and adds their results to *sum.
static void run_batch(long first, int count, uint64_t *sum)
{
    pthread_t tids[BATCH];
    for (int k = 0; k < count; k++) {
        int err = pthread_create(&tids[k], NULL, worker, (void *)(uintptr_t)(first + k));
        if (err) {
            fprintf(stderr, "create failed at %ld: %s\n", first + k, strerror(err));
            exit(1);
        }
    }
    for (int k = 0; k < count; k++) {
        void *ret;
        int err = pthread_join(tids[k], &ret);
        if (err) {
            fprintf(stderr, "join failed at %ld: %s\n", first + k, strerror(err));
            exit(1);
        }
        if ((uintptr_t)ret != value_of(first + k)) {
            fprintf(stderr, "thread %ld returned %lu\n", first + k, (unsigned long)(uintptr_t)ret);
            exit(1);
        }
        *sum += (uintptr_t)ret;
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    uint64_t sum = 0;
    alarm(60);
    for (long first = 0; first < n; first += BATCH)
        run_batch(first, n - first < BATCH ? (int)(n - first) : BATCH, &sum);
    printf("spawned and joined %ld threads, checksum %llu\n", n, (unsigned long long)sum);
    return 0;
}
