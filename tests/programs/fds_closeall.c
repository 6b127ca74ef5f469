/* A program that closes "every fd from 3 up" -- as daemons, shells and
 * subprocess libraries do -- and then opens files of its own, which get
 * numbers 3 and 4.  Natively nothing else writes into them and an idle
 * program uses no CPU.  The argument says how everything is closed:
 *   closefrom, close_range, close_range_cloexec (then exec a program that
 *   is not fiberized and lists what it inherited), close_loop (up to
 *   sysconf(_SC_OPEN_MAX)), syscall_close_range (syscall(2)).
 * Afterwards threads sleep, pass bytes over pipes and sockets and time out,
 * with carriers idle in between, and the files must hold exactly what the
 * program wrote. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "libc_compat.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *sleeper(void *arg)
{
    for (int i = 0; i < 5; i++)
        usleep(20000);
    return arg;
}

static void *echo_back(void *arg)
{
    int fd = *(int *)arg;
    char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            break;
    return NULL;
}

/* Sleeps, a socketpair round trip, a pipe round trip and a poll timeout:
 * every one needs the driver's epoll and wake-ups. */
static int exercise_runtime(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, sleeper, NULL);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return printf("socketpair: %s\n", strerror(errno)), 1;
    pthread_t echo;
    pthread_create(&echo, NULL, echo_back, &sv[1]);
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        char c = (char)('a' + i % 26), back = 0;
        usleep(1000); /* let the echo thread park first */
        if (write(sv[0], &c, 1) == 1 && read(sv[0], &back, 1) == 1 && back == c)
            ok++;
    }
    shutdown(sv[0], SHUT_WR);
    pthread_join(echo, NULL);
    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    int polled = poll(&pf, 1, 50);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    printf("round trips %d/50, poll timeout %d\n", ok, polled);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static long file_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (long)st.st_size : -1;
}

static void list_after_exec(void)
{
    /* a program that is not fiberized: whatever it lists it inherited */
    char *env[64];
    int n = 0;
    for (char **e = environ; *e && n < 63; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
            env[n++] = *e;
    env[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execle("/bin/sh", "sh", "-c", "cd /proc/self/fd && echo inherited: *", (char *)NULL, env);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "closefrom";
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    alarm(60);
    pthread_t warm;
    pthread_create(&warm, NULL, sleeper, NULL); /* carriers exist and go idle */
    pthread_join(warm, NULL);

    int r = 0;
    if (strcmp(how, "closefrom") == 0) {
        closefrom(3);
    } else if (strcmp(how, "close_range") == 0) {
        r = close_range(3, ~0U, 0);
    } else if (strcmp(how, "close_range_cloexec") == 0) {
        r = close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    } else if (strcmp(how, "syscall_close_range") == 0) {
        r = (int)syscall(SYS_close_range, 3, ~0U, 0);
    } else if (strcmp(how, "close_loop") == 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < max; fd++)
            close((int)fd);
    } else {
        fprintf(stderr, "unknown mode %s\n", how);
        return 2;
    }
    printf("%s returned %d\n", how, r);
    if (strcmp(how, "close_range_cloexec") == 0)
        list_after_exec();

    char a[256], b[256];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    int fa = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fb = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    printf("opened %d %d\n", fa, fb);
    write(fa, "first\n", 6);
    write(fb, "second\n", 7);

    double cpu0 = cpu_seconds();
    struct timespec nap = {0, 300 * 1000 * 1000};
    nanosleep(&nap, NULL); /* every carrier idle: nothing may run */
    double idle_cpu = cpu_seconds() - cpu0;
    printf("idle for 300 ms: %s\n", idle_cpu < 0.1 ? "no CPU used" : "CPU used");
    if (idle_cpu >= 0.1)
        fprintf(stderr, "idle CPU %.3f s\n", idle_cpu);

    if (exercise_runtime())
        return 1;
    printf("sizes %ld %ld\n", file_size(fa), file_size(fb));
    close(fa);
    close(fb);
    return 0;
}
