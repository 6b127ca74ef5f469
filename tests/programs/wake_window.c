/* A signal aimed at the moment a blocking call starts: natively the call
 * is one system call, so a handler that runs once it has begun ends it
 * with EINTR (no SA_RESTART).  Under fiberize the call is an attempt, then
 * a park; a signal handled in between must end it as well.  The signal is
 * SIGALRM from setitimer a few microseconds after the call begins (the
 * kernel hands it to the main thread), or SIGUSR1 sent with kill() or
 * pthread_kill(main) by a thread spinning on another CPU as main enters
 * the call.  Main blocks in
 * read (empty socket), send (full socket) or poll; every round must end
 * with EINTR within 10 ms (a 200 ms timeout catches a lost signal).  A
 * round may be slow because the machine is loaded: tolerated in 1%; a
 * timer signal may come before the call began (main preempted): tolerated
 * in 1%; a lost kill in 1 of 6,000 (see main).  Then
 * the other interruptions, aimed the same way at a thread entering read:
 * pthread_cancel, shutdown(SHUT_RD).
 *
 * usage: wake_window [ROUNDS]   (default 10000 per call and source)
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int rd, full;
static pthread_t main_thread;
static atomic_int armed; /* round number the kill thread should fire for:
                          * odd: pthread_kill(main), even: kill() */
static atomic_int handled;

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static unsigned rnd(void)
{
    static _Thread_local unsigned x = 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

static void spin_ns(long long ns)
{
    long long end = now_ns() + ns;
    while (now_ns() < end)
        ;
}

static void *killer(void *arg)
{
    (void)arg;
    int seen = 0;
    for (;;) {
        int a;
        while ((a = atomic_load(&armed)) == seen)
            ;
        if (a < 0)
            return NULL;
        seen = a;
        spin_ns(rnd() % 4000);
        if (a & 1)
            pthread_kill(main_thread, SIGUSR1);
        else
            kill(getpid(), SIGUSR1);
        /* park at once: under fiberize this carrier then goes idle and
         * looks at the signal while main may still be between its attempt
         * and its park */
        struct timespec nap = {0, 1000};
        nanosleep(&nap, NULL);
    }
}

enum call { C_READ, C_SEND, C_POLL, C_CALLS };
static const char *call_name[] = {"read", "send", "poll"};

/* 1: EINTR, 0: timed out (the signal interrupted nothing). */
static int blocking_call(enum call c)
{
    char buf[1] = {0};
    struct pollfd p = {rd, POLLIN, 0};
    int r;
    switch (c) {
    case C_READ:
        r = (int)read(rd, buf, 1);
        break;
    case C_SEND:
        r = (int)send(full, buf, 1, 0);
        break;
    default:
        r = poll(&p, 1, 200);
        if (r == 0)
            return 0;
        break;
    }
    if (r < 0 && errno == EINTR)
        return 1;
    if (r < 0 && errno == EAGAIN)
        return 0;
    fprintf(stderr, "%s: %d %s\n", call_name[c], r, strerror(errno));
    exit(2);
}

/* ---- the other interruptions: pthread_cancel and shutdown -------------- */

static atomic_int entering; /* the blocked thread is about to call read */

static void *reader(void *arg)
{
    int fd = *(int *)arg;
    char c;
    atomic_store(&entering, 1);
    ssize_t r = read(fd, &c, 1); /* ends by cancellation or shutdown */
    return (void *)(long)(r == 0 ? 0 : r < 0 ? -errno : 1);
}

/* Rounds of "a thread enters read(); main cancels it, or shuts the socket
 * down, a few microseconds later"; returns the rounds that took over
 * 100 ms (the thread must also be scheduled to finish: a loaded machine
 * takes milliseconds for that, natively too). */
static int cancel_or_shutdown(bool cancel, int rounds, int *wrong)
{
    int slow = 0;
    for (int i = 0; i < rounds; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
            exit(2);
        pthread_t t;
        atomic_store(&entering, 0);
        pthread_create(&t, NULL, reader, &sv[0]);
        while (!atomic_load(&entering))
            ;
        spin_ns(rnd() % 4000);
        long long start = now_ns();
        if (cancel)
            pthread_cancel(t);
        else
            shutdown(sv[0], SHUT_RD);
        void *res;
        pthread_join(t, &res);
        if (now_ns() - start > 100000000)
            slow++;
        if (cancel ? res != PTHREAD_CANCELED : res != NULL)
            ++*wrong;
        close(sv[0]);
        close(sv[1]);
    }
    return slow;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 10000;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int a[2], b[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, a) || socketpair(AF_UNIX, SOCK_STREAM, 0, b))
        return 2;
    rd = a[0];
    full = b[0];
    struct timeval limit = {0, 200000};
    setsockopt(rd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    setsockopt(full, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    static char chunk[65536];
    while (send(full, chunk, sizeof chunk, MSG_DONTWAIT) > 0)
        ;
    while (send(full, chunk, 1, MSG_DONTWAIT) > 0)
        ;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, killer, NULL);

    static const char *source_name[] = {"setitimer", "kill from another thread",
                                        "pthread_kill from another thread"};
    main_thread = pthread_self();
    int failed = 0, round_no = 0, kills_lost[3] = {0};
    for (int src = 0; src < 3; src++)
        for (int c = 0; c < C_CALLS; c++) {
            int missed = 0, slow = 0;
            long long worst = 0;
            for (int i = 0; i < rounds; i++) {
                int before = atomic_load(&handled);
                long long start = now_ns();
                if (src == 0) {
                    struct itimerval it = {{0, 0}, {0, 30 + rnd() % 70}};
                    setitimer(ITIMER_REAL, &it, NULL);
                } else {
                    /* the next round number of the parity this source uses */
                    round_no += (round_no & 1) != (src == 2) ? 1 : 2;
                    atomic_store(&armed, round_no);
                }
                int ok = blocking_call(c);
                long long took = now_ns() - start;
                if (took > worst)
                    worst = took;
                /* the signal came before the call began (preempted): natively
                 * that interrupts nothing either; wait for it, count it slow */
                while (atomic_load(&handled) == before)
                    spin_ns(1000);
                missed += !ok;
                slow += ok && took > 10000000;
            }
            /* a timer signal can come before the call began when main is
             * preempted (natively ~1 in 1000): tolerated here; lost kills
             * are judged over all three calls below */
            bool bad = (!src && missed > rounds / 100) || slow > rounds / 100;
            kills_lost[src] += missed;
            printf("%s in %s: %d rounds, %s\n", source_name[src], call_name[c], rounds,
                   bad ? "FAIL" : "every call interrupted within 10 ms");
            fprintf(stderr, "%s/%s: %d missed, %d slow, worst %lld us\n",
                    src == 0   ? "timer"
                    : src == 1 ? "kill"
                               : "pthread_kill",
                    call_name[c], missed, slow, worst / 1000);
            failed += bad;
        }
    /* A kill is lost when main's thread is preempted just before its call
     * begins: natively 0 or 1 in 30,000 rounds on a loaded machine, under
     * fiberize (whose call takes a few hundred ns longer to begin) 0 to 3.
     * The old library lost 9 to 24 kills on two carriers; before a handler
     * run by pthread_kill marked its fiber's call, 1 to 10 in 30,000 were
     * lost on one carrier. */
    for (int src = 1; src < 3; src++) {
        bool lost = kills_lost[src] > rounds * C_CALLS / 6000;
        printf("%s: %s\n", source_name[src],
               lost ? "FAIL: signals lost" : "no signal lost (at most 1 in 6,000)");
        fprintf(stderr, "%s: %d signals lost\n", source_name[src], kills_lost[src]);
        failed += lost;
    }
    atomic_store(&armed, -1);
    pthread_join(t, NULL);
    for (int cancel = 1; cancel >= 0; cancel--) {
        int wrong = 0, n = rounds / 10;
        int slow = cancel_or_shutdown(cancel, n, &wrong);
        bool bad = wrong || slow > n / 100;
        printf("%s of a thread entering read: %d rounds, %s\n",
               cancel ? "pthread_cancel" : "shutdown(SHUT_RD)", n,
               bad ? "FAIL" : "every read ended within 100 ms");
        fprintf(stderr, "%s: %d wrong, %d slow\n", cancel ? "cancel" : "shutdown", wrong, slow);
        failed += bad;
    }
    return failed ? 1 : 0;
}
