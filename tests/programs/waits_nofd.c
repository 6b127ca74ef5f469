/* Timed waits when the process has no fd left: every one must still end
 * at its deadline, from the main thread and from another thread.
 * sigtimedwait (100 ms, EAGAIN), poll on a pipe (100 ms, 0), a sleep, and
 * waitpid for a child that exits after 100 ms. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *timing(double elapsed)
{
    return elapsed >= 0.095 && elapsed < 5.0 ? "on time" : "off";
}

static int pipefd[2];
static pthread_barrier_t out_of_fds;

static void *waits(void *arg)
{
    const char *who = arg;
    if (strcmp(who, "thread") == 0)
        pthread_barrier_wait(&out_of_fds);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    struct timespec t100 = {0, 100 * 1000 * 1000};
    double t0 = now();
    int r = sigtimedwait(&set, NULL, &t100);
    int err = errno;
    printf("%s: sigtimedwait %d %s, %s\n", who, r, r < 0 ? strerror(err) : "-", timing(now() - t0));
    struct pollfd p = {pipefd[0], POLLIN, 0};
    t0 = now();
    r = poll(&p, 1, 100);
    printf("%s: poll %d, %s\n", who, r, timing(now() - t0));
    t0 = now();
    nanosleep(&t100, NULL);
    printf("%s: nanosleep %s\n", who, timing(now() - t0));
    fflush(stdout);
    return NULL;
}

int main(void)
{
    alarm(20); /* a wait that never ends kills the test */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pipe(pipefd);
    pid_t child = fork();
    if (child == 0) {
        usleep(100000);
        _exit(3);
    }
    /* a low limit, then fill every number below it */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &rl);
    pthread_barrier_init(&out_of_fds, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, waits, "thread"); /* made before: it needs no fd */
    while (open("/dev/null", O_RDONLY) >= 0)
        ;
    printf("out of fds: %s\n", errno == EMFILE ? "EMFILE" : strerror(errno));
    fflush(stdout);
    pthread_barrier_wait(&out_of_fds);
    pthread_join(t, NULL);
    int status = 0;
    pid_t got = waitpid(child, &status, 0);
    printf("main: waitpid %s, exit %d\n", got == child ? "ok" : "failed", WEXITSTATUS(status));
    waits("main");
    return 0;
}
