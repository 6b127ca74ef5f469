/* Signal masks per thread, as servers use them.
 *
 * 1. The classic shutdown pattern: main blocks SIGTERM and SIGUSR1 before
 *    starting threads (which inherit the mask), a dedicated thread waits
 *    in sigwait, and a worker thread sends SIGUSR1 to the process, then
 *    SIGTERM: both reach sigwait, in order, and never a default action.
 * 2. sigtimedwait times out with EAGAIN, and takes a signal already pending.
 * 3. A thread's mask is its own: one thread blocks SIGUSR2, another sees
 *    it unblocked; pthread_sigmask reports each thread's own mask.
 * 4. pause() in main ends with EINTR when a handler runs.
 * 5. A thread that unblocks a signal everyone else blocks receives it
 *    (sigsuspend with a mask that lets it in).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static int waited[2];

static void *signal_waiter(void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    for (int i = 0; i < 2; i++)
        if (sigwait(&set, &waited[i]) != 0)
            waited[i] = -1;
    return arg;
}

static void *sender(void *arg)
{
    usleep(50000);
    kill(getpid(), SIGUSR1);
    usleep(50000);
    kill(getpid(), SIGTERM);
    return arg;
}

static void shutdown_pattern(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t w, s;
    pthread_create(&w, NULL, signal_waiter, NULL);
    pthread_create(&s, NULL, sender, NULL);
    pthread_join(s, NULL);
    pthread_join(w, NULL);
    report("sigwait gets SIGUSR1 then SIGTERM, no default action",
           waited[0] == SIGUSR1 && waited[1] == SIGTERM);

    struct timespec ts = {0, 100000000};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    int r = sigtimedwait(&set, NULL, &ts);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited_s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    report("sigtimedwait times out with EAGAIN, not early",
           r == -1 && errno == EAGAIN && waited_s >= 0.099);
    kill(getpid(), SIGUSR1);
    siginfo_t info;
    r = sigtimedwait(&set, &info, &ts);
    report("sigtimedwait takes a pending signal with its info",
           r == SIGUSR1 && info.si_signo == SIGUSR1 && info.si_pid == getpid());
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void *blocks_usr2(void *arg)
{
    sigset_t set, now;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    usleep(20000); /* migrate, let others run */
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    *(int *)arg = sigismember(&now, SIGUSR2);
    return NULL;
}

static void *checks_usr2(void *arg)
{
    usleep(10000);
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    *(int *)arg = sigismember(&now, SIGUSR2);
    return NULL;
}

static void own_masks(void)
{
    int a = -1, b = -1;
    pthread_t x, y;
    pthread_create(&x, NULL, blocks_usr2, &a);
    pthread_create(&y, NULL, checks_usr2, &b);
    pthread_join(x, NULL);
    pthread_join(y, NULL);
    report("a thread's mask is its own", a == 1 && b == 0);
    sigset_t bad;
    sigemptyset(&bad);
    report("pthread_sigmask with a bad how: EINVAL", pthread_sigmask(12345, &bad, NULL) == EINVAL);
}

static volatile sig_atomic_t alarms, usr2_seen;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void on_usr2(int sig)
{
    (void)sig;
    usr2_seen++;
}

static void pause_in_main(void)
{
    signal(SIGALRM, on_alarm);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int r = pause();
    report("pause ends with EINTR after the handler", r == -1 && errno == EINTR && alarms == 1);
    signal(SIGALRM, SIG_DFL);
}

static void *suspender(void *arg)
{
    sigset_t let_in;
    pthread_sigmask(SIG_SETMASK, NULL, &let_in);
    sigdelset(&let_in, SIGUSR2);
    int r = sigsuspend(&let_in);
    *(int *)arg = r == -1 && errno == EINTR;
    return NULL;
}

static void sigsuspend_lets_in(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* main, and threads it starts */
    int ok = 0;
    pthread_t t;
    pthread_create(&t, NULL, suspender, &ok);
    usleep(50000);
    kill(getpid(), SIGUSR2);
    pthread_join(t, NULL);
    report("sigsuspend in the one thread that lets SIGUSR2 in gets it", ok && usr2_seen == 1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int main(void)
{
    alarm(30);
    shutdown_pattern();
    own_masks();
    pause_in_main();
    alarm(30);
    sigsuspend_lets_in();
    return failures != 0;
}
