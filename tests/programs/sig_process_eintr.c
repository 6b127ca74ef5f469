/* A process-directed signal ends exactly one blocked call, and only in a
 * thread that lets it in.
 *
 * Main blocks SIGUSR1 (a handler without SA_RESTART is installed) and starts
 * THREADS threads, each blocked in read() on a pipe of its own.  In round r
 * only thread r leaves SIGUSR1 unblocked: kill(getpid()) must end its read
 * with EINTR and no other.  In the last round every thread lets it in: one
 * read, any, ends with EINTR.  The rest read the byte main writes after.
 *
 * With the argument "oldest", in a fresh process: readers 0..3 park in
 * that order, then one more thread that lets SIGUSR1 in calls
 * kill(getpid()) itself.  The kernel looks for a taker starting from the
 * main thread in creation order, so natively reader 0's read ends; under
 * fiberize the handler runs on the sender (its carrier takes the signal)
 * and the runtime ends the longest-parked wait instead
 * (runtime/park.c's fz_interrupt_one): reader 0's again, and only it.
 *
 * Fiberized, a parked fiber's wait is found through the fiber, on
 * whichever carrier it parked: with two carriers the one that must be
 * interrupted may sit on either, and no two waits may end for one signal.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 6

static atomic_int handled, ready, interrupted;
static int pipes[THREADS][2];
static int outcome[THREADS]; /* 1: EINTR, 0: read the byte, -1: other */
static int only;             /* the thread that lets SIGUSR1 in, or -1 */

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static void spin_a_little(int i)
{
    /* uneven work first, so fibers park on different carriers */
    volatile unsigned x = 0;
    for (int k = 0; k < 20000 * (i + 1); k++)
        x += k;
}

static void *reader(void *arg)
{
    int i = (int)(long)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(only < 0 || only == i ? SIG_UNBLOCK : SIG_BLOCK, &set, NULL);
    spin_a_little(i);
    atomic_fetch_add(&ready, 1);
    char c;
    ssize_t n = read(pipes[i][0], &c, 1);
    if (n < 0 && errno == EINTR) {
        outcome[i] = 1;
        atomic_fetch_add(&interrupted, 1);
    } else {
        outcome[i] = n == 1 ? 0 : -1;
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int round_of(int who)
{
    only = who;
    atomic_store(&ready, 0);
    atomic_store(&interrupted, 0);
    int before = atomic_load(&handled);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, reader, (void *)(long)i);
    while (atomic_load(&ready) < THREADS)
        sleep_ms(1);
    sleep_ms(50); /* every reader inside read() */
    kill(getpid(), SIGUSR1);
    for (int waited = 0; atomic_load(&interrupted) < 1 && waited < 5000; waited++)
        sleep_ms(1);
    sleep_ms(20); /* a second, wrong EINTR would show up by now */
    for (int i = 0; i < THREADS; i++)
        if (write(pipes[i][1], "x", 1) != 1)
            return 0;
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++) { /* drain the bytes an EINTR left */
        char c;
        if (outcome[i] == 1 && read(pipes[i][0], &c, 1) != 1)
            return 0;
    }
    int count = 0, which = -1, other = 0;
    for (int i = 0; i < THREADS; i++) {
        if (outcome[i] == 1) {
            count++;
            which = i;
        } else if (outcome[i] != 0) {
            other++;
        }
    }
    int ok = count == 1 && other == 0 && atomic_load(&handled) == before + 1 &&
             (who < 0 || which == who);
    if (who < 0)
        printf("any thread: %s\n", ok ? "one read ended with EINTR" : "FAIL");
    else
        printf("only thread %d: %s\n", who, ok ? "its read ended with EINTR" : "FAIL");
    if (!ok)
        fprintf(stderr, "round %d: %d EINTR (last in %d), %d other, handler ran %d times\n", who,
                count, which, other, atomic_load(&handled) - before);
    return ok;
}

static void *sender(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), SIGUSR1);
    return NULL;
}

#define OLDEST_READERS 4

static int oldest_round(void)
{
    only = -1;
    pthread_t t[OLDEST_READERS], s;
    for (int i = 0; i < OLDEST_READERS; i++) {
        pthread_create(&t[i], NULL, reader, (void *)(long)i);
        while (atomic_load(&ready) < i + 1)
            sleep_ms(1);
        sleep_ms(30); /* parked, and a tick of the coarse clock later */
    }
    pthread_create(&s, NULL, sender, NULL);
    pthread_join(s, NULL);
    for (int waited = 0; atomic_load(&interrupted) < 1 && waited < 5000; waited++)
        sleep_ms(1);
    sleep_ms(20);
    for (int i = 0; i < OLDEST_READERS; i++)
        if (write(pipes[i][1], "x", 1) != 1)
            return 0;
    for (int i = 0; i < OLDEST_READERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < OLDEST_READERS; i++)
        printf("reader %d: %s\n", i,
               outcome[i] == 1   ? "EINTR"
               : outcome[i] == 0 ? "read its byte"
                                 : "FAIL");
    printf("handler ran %d time(s)\n", atomic_load(&handled));
    return outcome[0] == 1 && atomic_load(&interrupted) == 1 && atomic_load(&handled) == 1;
}

int main(int argc, char **argv)
{
    alarm(60);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: the read ends with EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < THREADS; i++)
        if (pipe(pipes[i]) != 0)
            return 2;
    if (argc > 1 && strcmp(argv[1], "oldest") == 0)
        return !oldest_round();
    int failures = 0;
    for (int r = 0; r < THREADS; r++)
        failures += !round_of(r);
    failures += !round_of(-1);
    return failures != 0;
}
