/* A handler taken away while its signals still arrive, and SIG_DFL put in
 * place of a handler.
 *
 * Usage: sig_dfl race [ROUNDS] -- each round installs a SIGALRM handler,
 * runs a 100 us interval timer for 300 us while three threads nap, stops
 * the timer and sets SIG_DFL.  Natively the last alarms run the handler
 * before setitimer returns; no alarm may meet SIG_DFL.  Prints the rounds
 * done (and to stderr how many saw an alarm).
 *
 * sig_dfl case K -- one way for a signal to meet SIG_DFL (or not) after a
 * handler: the process ends as natively or survives as natively.
 *   1 raise after SIG_DFL           2 abort with a SIGABRT handler
 *   3 pthread_kill another thread   4 kill(getpid) from another thread
 *   5 SIG_DFL then SIG_IGN          6 SIG_DFL then a handler again
 *   7 queries after SIG_DFL         8 a SIGSEGV handler that sets SIG_DFL
 *   9 alarm after SIG_DFL, in pause
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static atomic_int stop;

static void on_signal(int sig)
{
    (void)sig;
    hits++;
}

static void on_segv(int sig)
{
    (void)sig;
    signal(SIGSEGV, SIG_DFL); /* the fault comes back and ends the process */
}

static void *napper(void *arg)
{
    (void)arg;
    struct timespec nap = {0, 20000};
    while (!atomic_load(&stop))
        nanosleep(&nap, NULL);
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    sleep(5);
    return NULL;
}

static void *killer(void *arg)
{
    (void)arg;
    kill(getpid(), SIGTERM);
    sleep(5);
    return NULL;
}

static int race(int rounds)
{
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, napper, NULL);
    int with_alarms = 0;
    for (int r = 0; r < rounds; r++) {
        struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        hits = 0;
        struct itimerval every = {{0, 100}, {0, 100}}, off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &every, NULL);
        struct timespec left = {0, 300000};
        while (nanosleep(&left, &left) != 0)
            ;
        setitimer(ITIMER_REAL, &off, NULL);
        signal(SIGALRM, SIG_DFL);
        with_alarms += hits > 0;
        struct timespec after = {0, 100000};
        nanosleep(&after, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    /* Not compared: fiberized, an alarm an idle carrier took from the
     * kernel just before the change runs the old handler just after
     * signal() returns (README), so a round can count none. */
    printf("rounds %d\n", rounds);
    fprintf(stderr, "rounds with an alarm before SIG_DFL: %d\n", with_alarms);
    return 0;
}

static int one_case(int k)
{
    pthread_t t;
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
    raise(SIGUSR1);
    switch (k) {
    case 1:
        signal(SIGUSR1, SIG_DFL);
        raise(SIGUSR1);
        break;
    case 2:
        signal(SIGABRT, on_signal);
        abort();
    case 3:
        signal(SIGTERM, SIG_DFL);
        pthread_create(&t, NULL, sleeper, NULL);
        usleep(1000);
        pthread_kill(t, SIGTERM);
        sleep(2);
        break;
    case 4:
        signal(SIGTERM, SIG_DFL);
        pthread_create(&t, NULL, killer, NULL);
        sleep(2);
        break;
    case 5:
        signal(SIGUSR1, SIG_DFL);
        signal(SIGUSR1, SIG_IGN);
        raise(SIGUSR1);
        printf("survived, hits %d\n", hits);
        return 0;
    case 6:
        signal(SIGUSR1, SIG_DFL);
        signal(SIGUSR1, on_signal);
        raise(SIGUSR1);
        printf("hits %d\n", hits);
        return 0;
    case 7: {
        signal(SIGUSR1, SIG_DFL);
        struct sigaction now;
        sigaction(SIGUSR1, NULL, &now);
        void (*previous)(int) = signal(SIGUSR1, SIG_DFL);
        printf("query SIG_DFL %d, signal() returned SIG_DFL %d\n", now.sa_handler == SIG_DFL,
               previous == SIG_DFL);
        return 0;
    }
    case 8:
        signal(SIGSEGV, on_segv);
        *(volatile int *)(uintptr_t)strtoul("8", NULL, 10) = 1;
        break;
    case 9:
        signal(SIGALRM, on_signal);
        signal(SIGALRM, SIG_DFL);
        alarm(1);
        pause();
        break;
    }
    printf("not reached, hits %d\n", hits);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && strcmp(argv[1], "race") == 0)
        return race(argc > 2 ? atoi(argv[2]) : 200);
    if (argc >= 3 && strcmp(argv[1], "case") == 0)
        return one_case(atoi(argv[2]));
    fprintf(stderr, "usage: sig_dfl race [ROUNDS] | sig_dfl case 1..9\n");
    return 2;
}
