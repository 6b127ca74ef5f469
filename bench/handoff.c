/* Hand-off reaction time: one thread blocks in a raw read(2) on a pipe
 * (a system call no interposer sees), another wants to run right after.
 * Natively the kernel runs it at once; under fiberize, when the blocker
 * took the carrier the other is queued on, it waits until the monitor hands
 * the queue over (FIBERIZE_HANDOFF_US).  Prints the delay from starting
 * both to the second one running: the first time (a spare carrier must be
 * started) and the median of 19 more (spares exist by then). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int pipefd[2];

static void *blocker(void *arg)
{
    char c;
    syscall(SYS_read, pipefd[0], &c, 1); /* the carrier is stuck here */
    return arg;
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
    double delays[20];
    for (int i = 0; i < 20; i++) {
        if (pipe(pipefd) != 0)
            return 1;
        pthread_t b, r;
        double ran = 0;
        double asked = now_us();
        /* queued in this order: the blocker runs first and gets stuck */
        pthread_create(&b, NULL, blocker, NULL);
        pthread_create(&r, NULL, runner, &ran);
        pthread_join(r, NULL);
        delays[i] = ran - asked;
        (void)!write(pipefd[1], "x", 1);
        pthread_join(b, NULL);
        close(pipefd[0]);
        close(pipefd[1]);
    }
    printf("handoff_first_reaction\t%.1f\tus\n", delays[0]);
    qsort(delays + 1, 19, sizeof delays[0], cmp);
    printf("handoff_warm_reaction\t%.1f\tus\n", delays[10]);
    return 0;
}
