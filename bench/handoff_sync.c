/* Hand-off reaction for a call made in place that really blocks: one
 * thread calls fdatasync on a file with 4 MiB of dirty data on a disk
 * file system (it waits for the device), another wants to run right after.
 * Natively the kernel runs the second at once; under fiberize fdatasync is
 * made on the fiber's carrier (it usually returns at once), so the second,
 * queued on that carrier, waits until the monitor hands the queue over
 * (FZ_BLOCKING_HANDOFF_NS in runtime/monitor.c).  Prints the delay from
 * starting both to the second one running, the first time (a spare carrier
 * must be started) and the median of 19 more, and the median fdatasync
 * time (a hand-off can only happen inside it).  Run it with
 * FIBERIZE_WORKERS=1 to make sure both threads share a carrier.
 * FZ_BENCH_DIR says where the file goes (default /var/tmp: not tmpfs). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 20
#define DIRTY (4 << 20) /* enough dirty pages that the device is waited for */

static int fd;
static char block[1 << 16];
static double sync_us[ROUNDS];

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *blocker(void *arg)
{
    double start = now_us();
    if (fdatasync(fd) != 0)
        abort();
    *(double *)arg = now_us() - start;
    return NULL;
}

static void *runner(void *arg)
{
    *(double *)arg = now_us();
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    const char *dir = getenv("FZ_BENCH_DIR") ? getenv("FZ_BENCH_DIR") : "/var/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/fz_bench_sync.XXXXXX", dir);
    fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    unlink(path);
    memset(block, 'x', sizeof block);
    double delays[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        for (int done = 0; done < DIRTY; done += (int)sizeof block)
            if (pwrite(fd, block, sizeof block, done) != (ssize_t)sizeof block)
                return 1;
        pthread_t b, r;
        double ran = 0;
        double asked = now_us();
        /* queued in this order: the blocker runs first and waits on the disk */
        pthread_create(&b, NULL, blocker, &sync_us[i]);
        pthread_create(&r, NULL, runner, &ran);
        pthread_join(r, NULL);
        delays[i] = ran - asked;
        pthread_join(b, NULL);
    }
    printf("handoff_sync_first_reaction\t%.1f\tus\n", delays[0]);
    qsort(delays + 1, ROUNDS - 1, sizeof delays[0], cmp);
    printf("handoff_sync_warm_reaction\t%.1f\tus\n", delays[ROUNDS / 2]);
    qsort(sync_us, ROUNDS, sizeof sync_us[0], cmp);
    printf("handoff_sync_fdatasync\t%.1f\tus\n", sync_us[ROUNDS / 2]);
    return 0;
}
