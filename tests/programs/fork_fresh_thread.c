/* What a fork child's only thread starts with, natively: no pending
 * signal (a signal pending on the forking thread stays the parent's) and a
 * CPU clock at 0.  Fiberized, the child runs without the runtime until its
 * first thread and the runtime then takes the thread over as a fiber
 * (preload/init.c): the fiber's own pending set and CPU clock are reset
 * then, so they must read the same before and after that first thread.
 * The parent computes for 200 ms and has SIGUSR1 pending (blocked) on its
 * forking thread; the child reports both before and after starting a
 * thread, then unblocks SIGUSR1 (a handler that ran would say so).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
    (void)sig;
    handled = 1;
}

static void *nothing(void *arg)
{
    return arg;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void report(const char *when)
{
    sigset_t pending;
    sigpending(&pending);
    /* a fresh thread has used a few ms at most; the parent's 200 ms would
     * show here if the clock went on from the forking thread's */
    printf("child %s: SIGUSR1 pending: %s, CPU clock under 100 ms: %s\n", when,
           sigismember(&pending, SIGUSR1) ? "yes" : "no", cpu_ms() < 100 ? "yes" : "no");
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 1;
    signal(SIGUSR1, on_usr1);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    pthread_kill(pthread_self(), SIGUSR1);
    double start = cpu_ms();
    while (cpu_ms() - start < 200)
        ;
    usleep(1000); /* fiberized, a switch-out charges the fiber its 200 ms */
    sigset_t pending;
    sigpending(&pending);
    printf("parent: SIGUSR1 pending: %s\n", sigismember(&pending, SIGUSR1) ? "yes" : "no");
    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        report("before its first thread");
        if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
            _exit(2);
        report("after its first thread");
        pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
        printf("child: handler ran after unblocking: %s\n", handled ? "yes" : "no");
        fflush(stdout);
        _exit(0);
    }
    int st;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    printf("parent: handler ran after unblocking: %s\n", handled ? "yes" : "no");
    return 0;
}
