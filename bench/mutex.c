/* Mutex costs: an uncontended lock+unlock pair, and a counter that 64
 * threads increment under one mutex.
 * Prints: mutex_uncontended_pair <ns>, mutex_contended_64 <ops/s> */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define PAIRS 20000000L
#define THREADS 64
#define PER_THREAD 50000L

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double ns_per_uncontended_pair(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    double start = now();
    for (long i = 0; i < PAIRS; i++) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    return (now() - start) * 1e9 / PAIRS;
}

static void *count(void *arg)
{
    for (long i = 0; i < PER_THREAD; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return arg;
}

static double contended_ops_per_s(void)
{
    pthread_t t[THREADS];
    double start = now();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, count, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    double took = now() - start;
    if (counter != THREADS * PER_THREAD)
        fprintf(stderr, "mutex: counter %ld, expected %ld\n", counter, THREADS * PER_THREAD);
    return counter / took;
}

int main(void)
{
    /* contended first: once a thread has existed, glibc's single-thread
     * shortcut (a plain store instead of an atomic) no longer applies
     * natively, as it never does under fiberize, whose carriers are threads */
    double ops = contended_ops_per_s();
    printf("mutex_uncontended_pair\t%.1f\tns\n", ns_per_uncontended_pair());
    printf("mutex_contended_64\t%.0f\tops/s\n", ops);
    return 0;
}
