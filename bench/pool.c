/* Round trip of one call through the blocking pool: fdatasync on a file in
 * /dev/shm (tmpfs: the call itself is a cheap system call), which fiberize
 * always hands to the pool.  Natively it is the bare call; fiberized the
 * difference is the offload: queue, a pool thread's wake-up, the call, the
 * fiber's wake-up.  One thread calling back to back (it reuses one pool
 * thread), then 8 threads at once.  Prints metric<TAB>value<TAB>unit.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CALLS 20000
#define THREADS 8
/* The 8-thread part: 20,000 calls took 3-5 ms, of which a fiberized
 * program's first pthread_create (it starts the carriers and the monitor)
 * and the carriers' first steals were a share that swung the result 2x
 * between runs; ten times as many measure the calls. */
#define THREAD_CALLS (CALLS * 10)

static int fd;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *syncs(void *arg)
{
    long calls = (long)arg;
    for (long i = 0; i < calls; i++)
        if (fdatasync(fd) != 0)
            abort();
    return NULL;
}

int main(void)
{
    char path[] = "/dev/shm/fz_bench_pool.XXXXXX";
    fd = mkstemp(path);
    if (fd < 0 || write(fd, "x", 1) != 1) {
        perror("mkstemp /dev/shm");
        return 1;
    }
    unlink(path);
    syncs((void *)100L); /* warm: the first offload starts a pool thread */
    double start = now_s();
    syncs((void *)(long)CALLS);
    printf("pool_roundtrip_fdatasync\t%.2f\tus\n", (now_s() - start) * 1e6 / CALLS);

    pthread_t t[THREADS];
    start = now_s();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, syncs, (void *)(long)(THREAD_CALLS / THREADS));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("pool_fdatasync_8threads\t%.0f\tcalls/s\n", THREAD_CALLS / (now_s() - start));
    return 0;
}
