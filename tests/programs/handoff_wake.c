/* A carrier that leaves idle by any path must wake the hand-off monitor.
 *
 * The monitor sleeps while every carrier counts as idle.  A carrier woken
 * with nothing to run searches for a while (sched.c search), going on and
 * off the idle list between pauses; if a timer fires during that search,
 * it runs the fiber straight away.  When that fiber then blocks where no
 * interposer sees it (a raw read(2) system call here, a FIFO write in the
 * bug report), only the monitor can move the other fibers to a spare --
 * and it once stayed asleep: the program hung for good.
 *
 * Each round: two 100 us naps (the second one ends during such a search on
 * one carrier), then a raw read on a pipe that a second thread writes to
 * after 2 ms.  Natively every round takes about 2 ms.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ROUNDS 300

static int pipe_fds[2];

static void *late_writer(void *arg)
{
    usleep(2000);
    if (write(pipe_fds[1], "x", 1) != 1)
        perror("write");
    return arg;
}

int main(void)
{
    if (pipe(pipe_fds) != 0)
        return 2;
    int got = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_t t;
        usleep(100);
        usleep(100);
        if (pthread_create(&t, NULL, late_writer, NULL) != 0)
            return 2;
        char c;
        /* the raw system call: fiberize cannot park it, the carrier blocks */
        got += syscall(SYS_read, pipe_fds[0], &c, 1) == 1 && c == 'x';
        pthread_join(t, NULL);
    }
    printf("%d rounds: %d raw reads got the late writer's byte\n", ROUNDS, got);
    return got == ROUNDS ? 0 : 1;
}
