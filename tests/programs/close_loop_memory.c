/* A close loop over every number up to the fd limit costs no memory.
 *
 * Daemons close what they may have inherited with
 * for (fd = 3; fd < sysconf(_SC_OPEN_MAX); fd++) close(fd);
 * fiberize keeps per-number state in a table it grows on use; a close of a
 * number nothing ever used must not grow it (with the limit at 1M, as in
 * many containers, that was 112 MiB).  The soft limit is raised to the hard
 * one first, as such daemons often do.  Prints whether the resident size
 * grew by under 1 MiB (the output is compared with native).  A thread
 * has run first: fiberized, the runtime is up then.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            sscanf(line + 6, "%ld", &kib);
    if (f)
        fclose(f);
    return kib;
}

static void *nothing(void *arg)
{
    return arg;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0)
        pthread_join(t, NULL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    long before = rss_kib();
    long top = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < top; fd++)
        close((int)fd);
    long grown = rss_kib() - before;
    printf("closed every number up to the limit; resident size grew under 1 MiB: %s\n",
           grown < 1024 ? "yes" : "no");
    if (grown >= 1024)
        fprintf(stderr, "grew by %ld KiB (limit %ld)\n", grown, top);
    return 0;
}
