/* A byte bounced between two threads through a pair of pipes, then a pair
 * of socketpairs: every hand-off is a blocking read woken by the other
 * thread's write.  Prints microseconds per round trip for each. */
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 20000

static int there[2], back[2];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *echo(void *arg)
{
    char c;
    for (int i = 0; i < ROUNDS; i++)
        if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
            break;
    return arg;
}

static double us_per_round_trip(void)
{
    pthread_t t;
    pthread_create(&t, NULL, echo, NULL);
    double start = now();
    char c = 'x';
    for (int i = 0; i < ROUNDS; i++)
        if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
            break;
    double us = (now() - start) * 1e6 / ROUNDS;
    pthread_join(t, NULL);
    return us;
}

int main(void)
{
    if (pipe(there) || pipe(back))
        return 1;
    printf("pipe_pingpong_round_trip\t%.2f\tus\n", us_per_round_trip());
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, there) || socketpair(AF_UNIX, SOCK_STREAM, 0, back))
        return 1;
    printf("socketpair_pingpong_round_trip\t%.2f\tus\n", us_per_round_trip());
    return 0;
}
