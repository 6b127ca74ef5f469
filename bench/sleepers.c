/* Many threads alive at once, each asleep: create N threads that each sleep
 * 2 s, then join them.  Prints the wall time and the peak RSS per thread.
 * Natively this machine cannot start 100,000 threads (ulimit -u, and
 * vm.max_map_count with a guard page per stack), so the native run prints
 * how many it started before pthread_create failed.  BENCH_SLEEPERS sets N. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *nap(void *arg)
{
    sleep(2);
    return arg;
}

static long rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(void)
{
    const char *env = getenv("BENCH_SLEEPERS");
    long n = env ? atol(env) : 100000;
    pthread_t *t = malloc(sizeof *t * (size_t)n);
    long base = rss_kib();
    double start = now();
    long made = 0;
    while (made < n && pthread_create(&t[made], NULL, nap, NULL) == 0)
        made++;
    for (long i = 0; i < made; i++)
        pthread_join(t[i], NULL);
    double wall = now() - start;
    printf("sleepers_started\t%ld\tthreads\n", made);
    if (made == n) {
        printf("sleepers_wall\t%.2f\ts\n", wall);
        printf("sleepers_rss_per_thread\t%.1f\tKiB\n", (double)(rss_kib() - base) / (double)n);
    }
    return 0;
}
