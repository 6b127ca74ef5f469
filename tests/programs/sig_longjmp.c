/* siglongjmp out of signal handlers, as timeout code does it:
 *   if (sigsetjmp(env, 1) == 0) { arm a timer; block in some call; }
 * with a SIGALRM handler that siglongjmps back.  Each kind of blocking call
 * is left this way 30 times (read on a pipe nobody writes, pause, a long
 * nanosleep, poll, a busy loop), with handlers installed by signal()
 * (SA_RESTART) and by sigaction without it.  Afterwards threads still
 * start, run, sleep and join, and the signal mask is what it was: the
 * runtime must not be left inside a wait or a scheduler path the handler
 * jumped out of.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile sig_atomic_t jumps;
static int pipefd[2];

static void on_alarm(int sig)
{
    (void)sig;
    jumps++;
    siglongjmp(env, 1);
}

static void arm_ms(int ms)
{
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void block_in(int kind)
{
    char c;
    struct timespec long_sleep = {10, 0};
    struct pollfd p = {pipefd[0], POLLIN, 0};
    switch (kind) {
    case 0:
        (void)!read(pipefd[0], &c, 1);
        break;
    case 1:
        pause();
        break;
    case 2:
        nanosleep(&long_sleep, NULL);
        break;
    case 3:
        poll(&p, 1, 10000);
        break;
    default:
        for (volatile unsigned long spin = 0;; spin++)
            ;
    }
}

static void *child(void *arg)
{
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    return arg;
}

static int threads_work(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, child, (void *)i))
            return 0;
    for (long i = 0; i < 4; i++) {
        void *r;
        if (pthread_join(t[i], &r) || r != (void *)i)
            return 0;
    }
    return 1;
}

int main(void)
{
    static const char *names[] = {"read", "pause", "nanosleep", "poll", "busy loop"};
    volatile int failures = 0;
    pipe(pipefd);
    sigset_t before, after;
    sigprocmask(SIG_BLOCK, NULL, &before);
    for (volatile int style = 0; style < 2; style++) {
        if (style == 0) {
            signal(SIGALRM, on_alarm);
        } else {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_alarm;
            sigaction(SIGALRM, &sa, NULL);
        }
        for (volatile int kind = 0; kind < 5; kind++) {
            jumps = 0;
            for (volatile int i = 0; i < 30; i++) {
                if (sigsetjmp(env, 1) == 0) {
                    arm_ms(2);
                    block_in(kind);
                }
            }
            int ok = jumps == 30 && threads_work();
            printf("%s, %s: left 30 times, threads still work: %s\n",
                   style ? "sigaction" : "signal()", names[kind], ok ? "ok" : "FAIL");
            failures += !ok;
        }
    }
    sigprocmask(SIG_BLOCK, NULL, &after);
    int same = sigismember(&before, SIGALRM) == sigismember(&after, SIGALRM);
    printf("signal mask restored: %s\n", same ? "ok" : "FAIL");
    return failures || !same;
}
