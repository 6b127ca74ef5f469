/* Opening the write end of a FIFO whose reader is already there: natively
 * an open that returns at once; under fiberize a FIFO open may wait for its
 * peer, and such waits were all made in the blocking pool (two cross-thread
 * wake-ups per open).  One thread holds the read end open; the main thread
 * opens and closes the write end back to back.  Prints
 * metric<TAB>value<TAB>unit (one open plus one close). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OPENS 20000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    char dir[] = "/dev/shm/fz_bench_fifo.XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/f", dir);
    if (mkfifo(path, 0600) != 0)
        return 1;
    /* the reader: O_NONBLOCK opens without a writer and never waits */
    int reader = open(path, O_RDONLY | O_NONBLOCK);
    if (reader < 0)
        return 1;
    double start = now_s();
    for (int i = 0; i < OPENS; i++) {
        int fd = open(path, O_WRONLY);
        if (fd < 0)
            abort();
        close(fd);
    }
    printf("fifo_open_writer\t%.2f\tus\n", (now_s() - start) * 1e6 / OPENS);
    close(reader);
    unlink(path);
    rmdir(dir);
    return 0;
}
