/* A program whose threads have all been joined is one OS thread again, and
 * forks as one.  Fiberized, the carriers and the monitor stay after the
 * joins, and the fork shrinks the runtime back first (sched.c,
 * fz_sched_shrink): the parent is one thread after the fork, as natively,
 * and its next thread starts them again.  Rounds:
 *  - plain: threads created and joined, then a fork;
 *  - detached: a detached thread that has exited, then a fork;
 *  - spare: one thread blocks its carrier in a raw system call while
 *    another computes, so the monitor starts a spare carrier, which must
 *    go too;
 *  - alive: one thread still sleeps at the fork: nothing shrinks (natively
 *    two threads), and it still wakes after.
 * Each round then passes a token around a ring of threads, to show the
 * restarted runtime runs them.  Prints per round the parent's thread count
 * after the fork, the child's exit status and the ring's total. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "threads_of.h"

#define RING 8
#define LAPS 100

static void *nothing(void *arg)
{
    return arg;
}

static void *raw_sleep(void *arg)
{
    struct timespec ts = {0, 150 * 1000 * 1000};
    syscall(SYS_nanosleep, &ts, NULL); /* not interposed: its carrier is stuck */
    return arg;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *compute(void *arg)
{
    double end = now_s() + 0.15;
    while (now_s() < end)
        ;
    return arg;
}

static void *wait_for_close(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) > 0)
        ;
    return NULL;
}

struct hop {
    int in, out;
    long sum;
};

static void *pass_on(void *arg)
{
    struct hop *h = arg;
    long token;
    for (int lap = 0; lap < LAPS; lap++) {
        if (read(h->in, &token, sizeof token) != sizeof token)
            exit(3);
        h->sum += token;
        token++;
        if (write(h->out, &token, sizeof token) != sizeof token)
            exit(3);
    }
    return NULL;
}

/* RING threads in a ring of pipes; main starts the token and takes it
 * back at each lap.  Returns the sum of what every thread saw. */
static long ring(void)
{
    int p[RING + 1][2];
    for (int i = 0; i <= RING; i++)
        if (pipe(p[i]) != 0)
            exit(2);
    struct hop hops[RING];
    pthread_t t[RING];
    for (int i = 0; i < RING; i++) {
        hops[i] = (struct hop){p[i][0], p[i + 1][1], 0};
        if (pthread_create(&t[i], NULL, pass_on, &hops[i]) != 0)
            exit(2);
    }
    long token = 0;
    for (int lap = 0; lap < LAPS; lap++) {
        if (write(p[0][1], &token, sizeof token) != sizeof token ||
            read(p[RING][0], &token, sizeof token) != sizeof token)
            exit(3);
    }
    long sum = 0;
    for (int i = 0; i < RING; i++) {
        pthread_join(t[i], NULL);
        sum += hops[i].sum;
    }
    for (int i = 0; i <= RING; i++)
        close(p[i][0]), close(p[i][1]);
    return sum;
}

static void fork_and_report(const char *round)
{
    pid_t pid = fork();
    if (pid < 0)
        exit(2);
    if (pid == 0)
        _exit(threads_of(getpid()) == 1 ? 7 : 8);
    int threads = threads_settled(getpid(), 1);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        exit(2);
    printf("%s: threads after the fork %d, child status %d", round, threads, WEXITSTATUS(st));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t, u;
    for (int i = 0; i < 3; i++) {
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
    }
    fork_and_report("plain");
    printf(", ring %ld\n", ring());

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, nothing, NULL);
    usleep(20000); /* it has exited by then */
    fork_and_report("detached");
    printf(", ring %ld\n", ring());

    pthread_create(&t, NULL, raw_sleep, NULL);
    pthread_create(&u, NULL, compute, NULL);
    pthread_join(t, NULL);
    pthread_join(u, NULL);
    fork_and_report("spare");
    printf(", ring %ld\n", ring());

    int p[2];
    if (pipe(p) != 0)
        return 2;
    pthread_create(&t, NULL, wait_for_close, &p[0]);
    usleep(20000);
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    int st;
    waitpid(pid, &st, 0);
    printf("alive: child status %d", WEXITSTATUS(st));
    close(p[1]);
    pthread_join(t, NULL);
    printf(", sleeper joined, ring %ld\n", ring());
    fork_and_report("again");
    printf("\n");
    return 0;
}
