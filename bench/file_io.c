/* Reading a regular file that is in the page cache: 4 KiB pread and read
 * calls from one thread, and from 8 threads at once; then pread from main
 * again once threads have run.  Fiberized, the first rows are a program
 * that has created no thread yet (its calls are the real ones, in place)
 * and the last one the interposed path every threaded program takes.
 * make bench also runs it with FIBERIZE_FILE_IO=pool, which is how the
 * inline default was chosen (the pool serves only the threaded rows).
 * Prints metric<TAB>value<TAB>unit.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_BYTES (1 << 20)
#define CALLS 100000
#define THREADS 8

static int fd;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *preads(void *arg)
{
    char buf[4096];
    long calls = (long)arg;
    for (long i = 0; i < calls; i++)
        if (pread(fd, buf, sizeof buf, (i * 4096) % FILE_BYTES) != sizeof buf)
            abort();
    return NULL;
}

static double ns_per_read(void)
{
    char buf[4096];
    double start = now_s();
    for (int i = 0; i < CALLS; i++) {
        if (i % (FILE_BYTES / 4096) == 0)
            lseek(fd, 0, SEEK_SET);
        if (read(fd, buf, sizeof buf) != sizeof buf)
            abort();
    }
    return (now_s() - start) * 1e9 / CALLS;
}

int main(void)
{
    char path[] = "/tmp/fiberize-bench-XXXXXX";
    fd = mkstemp(path);
    if (fd < 0)
        return 1;
    unlink(path);
    char *data = calloc(1, FILE_BYTES);
    if (write(fd, data, FILE_BYTES) != FILE_BYTES)
        return 1;
    free(data);
    preads((void *)1000L); /* warm */

    double start = now_s();
    preads((void *)(long)CALLS);
    printf("file_pread_4k\t%.0f\tns\n", (now_s() - start) * 1e9 / CALLS);
    printf("file_read_4k\t%.0f\tns\n", ns_per_read());

    pthread_t t[THREADS];
    start = now_s();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, preads, (void *)(long)(CALLS / THREADS));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("file_pread_4k_8threads\t%.0f\tMB/s\n", CALLS * 4096.0 / (now_s() - start) / 1e6);

    start = now_s();
    preads((void *)(long)CALLS);
    printf("file_pread_4k_after_threads\t%.0f\tns\n", (now_s() - start) * 1e9 / CALLS);
    return 0;
}
