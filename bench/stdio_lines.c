/* A line protocol spoken through stdio, as a thread-per-connection program
 * written the simple way does it: PAIRS client/server thread pairs over
 * socketpairs, each side fdopen'ing its end, writing a line with fprintf
 * and fflush and reading the answer with fgets.  The same exchange made
 * with read/write on the bare fds is the reference for what stdio adds.
 * Prints round trips per second (all pairs together) for both, and the
 * most OS threads the process had while the pairs ran (stdio waits that
 * block their carrier make the runtime start spares).
 *
 *   stdio_lines [PAIRS [ROUNDS [stdio|raw]]]   default 200 pairs, 2,000
 *                                               rounds each, both kinds
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int rounds;
static volatile int sampling;
static int max_threads;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *stdio_server(void *arg)
{
    int fd = (int)(intptr_t)arg;
    FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
    char line[128];
    while (fgets(line, sizeof line, in)) {
        fprintf(out, "pong %d\n", atoi(line + 5));
        fflush(out);
    }
    fclose(in);
    fclose(out);
    return NULL;
}

static void *stdio_client(void *arg)
{
    int fd = (int)(intptr_t)arg;
    FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
    char line[128];
    for (int i = 0; i < rounds; i++) {
        fprintf(out, "ping %d\n", i);
        fflush(out);
        if (!fgets(line, sizeof line, in) || atoi(line + 5) != i)
            exit(3);
    }
    fclose(out);
    fclose(in);
    return NULL;
}

/* The same lines with read/write: one read returns one line here, as
 * the peer writes one at a time and waits for the answer. */
static void *raw_server(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char line[128];
    ssize_t n;
    while ((n = read(fd, line, sizeof line - 1)) > 0) {
        line[n] = 0;
        int len = snprintf(line, sizeof line, "pong %d\n", atoi(line + 5));
        if (write(fd, line, (size_t)len) != len)
            break;
    }
    close(fd);
    return NULL;
}

static void *raw_client(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char line[128];
    for (int i = 0; i < rounds; i++) {
        int len = snprintf(line, sizeof line, "ping %d\n", i);
        ssize_t n;
        if (write(fd, line, (size_t)len) != len || (n = read(fd, line, sizeof line - 1)) <= 0)
            exit(3);
        line[n] = 0;
        if (atoi(line + 5) != i)
            exit(3);
    }
    shutdown(fd, SHUT_WR);
    close(fd);
    return NULL;
}

static int os_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            n = atoi(line + 8);
    if (f)
        fclose(f);
    return n;
}

static void *sampler(void *arg)
{
    struct timespec ms = {0, 2000000};
    while (sampling) {
        int n = os_threads();
        if (n > max_threads)
            max_threads = n;
        nanosleep(&ms, NULL);
    }
    return arg;
}

/* Round trips per second with PAIRS pairs of (server, client). */
static double run(int pairs, void *(*server)(void *), void *(*client)(void *))
{
    pthread_t *t = malloc(sizeof *t * 2 * (size_t)pairs), smp;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    max_threads = 0;
    sampling = 1;
    pthread_create(&smp, NULL, sampler, NULL);
    double t0 = now();
    for (int i = 0; i < pairs; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
            exit(2);
        if (pthread_create(&t[2 * i], &attr, server, (void *)(intptr_t)sv[0]) ||
            pthread_create(&t[2 * i + 1], &attr, client, (void *)(intptr_t)sv[1]))
            exit(2);
    }
    for (int i = 0; i < 2 * pairs; i++)
        pthread_join(t[i], NULL);
    double secs = now() - t0;
    sampling = 0;
    pthread_join(smp, NULL);
    free(t);
    return (double)pairs * rounds / secs;
}

int main(int argc, char **argv)
{
    int pairs = argc > 1 ? atoi(argv[1]) : 200;
    rounds = argc > 2 ? atoi(argv[2]) : 2000;
    const char *only = argc > 3 ? argv[3] : "";
    if (strcmp(only, "raw")) {
        double s = run(pairs, stdio_server, stdio_client);
        printf("stdio lines, %d pairs\t%.0f\tround trips/s\n", pairs, s);
        fprintf(stderr, "os threads, stdio lines: %d\n", max_threads);
    }
    if (strcmp(only, "stdio")) {
        double r = run(pairs, raw_server, raw_client);
        printf("read/write lines, %d pairs\t%.0f\tround trips/s\n", pairs, r);
        fprintf(stderr, "os threads, read/write lines: %d\n", max_threads);
    }
    return 0;
}
