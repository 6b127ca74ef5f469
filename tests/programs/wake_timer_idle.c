/* A sleeping thread's timer fires while another thread blocks where
 * fiberize cannot see.
 *
 * Here main reads a socket with fscanf; the feeder sleeps GAP_MS before
 * each of its two lines.  The second fscanf finds the newline left over
 * and goes on inside glibc, whose read(2) blocks main's carrier, so only
 * the other carrier can fire the feeder's timer.  A carrier that went
 * idle while the busy one held the driver role for a moment slept on its
 * futex with nobody in the driver, and the feeder's nanosleep was never
 * woken: a hang (the busy carrier's main waits for the feeder's line).
 * Every round must see both lines; alarm() ends a hung run.
 *   wake_timer_idle ROUNDS [GAP_MS]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int feed_fd, gap_ms = 2;

static void *feeder(void *arg)
{
    static const char *const lines[] = {"42 forty-two\n", "7 seven\n"};
    for (int i = 0; i < 2; i++) {
        struct timespec ts = {0, gap_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (write(feed_fd, lines[i], strlen(lines[i])) < 0)
            perror("write");
    }
    close(feed_fd);
    return arg;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    if (argc > 2)
        gap_ms = atoi(argv[2]);
    alarm(60);
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            return 1;
        feed_fd = sv[1];
        pthread_t t;
        pthread_create(&t, NULL, feeder, NULL);
        FILE *in = fdopen(sv[0], "r");
        int n, lines = 0;
        char word[32];
        while (fscanf(in, "%d %31s", &n, word) == 2)
            lines++;
        if (lines != 2)
            bad++;
        pthread_join(t, NULL);
        fclose(in);
    }
    printf("%d rounds, %d bad\n", rounds, bad);
    return bad != 0;
}
