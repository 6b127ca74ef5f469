/* dup2 (and dup3) onto every number from 3 up to the limit (at most 5000), as a
 * program that does not know -- and must not need to know -- where the
 * runtime keeps its fds.  Natively each one succeeds up to the soft limit
 * and the next fails with EBADF.  With the argument "raise" the program
 * first raises its soft limit to the hard one.  Then the runtime must still work: sleeps,
 * threads, sockets, a child's exit; then the numbers are closed again and
 * none may be left open. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *pong(void *arg)
{
    int fd = *(int *)arg;
    char c;
    while (read(fd, &c, 1) == 1)
        if (write(fd, &c, 1) != 1)
            break;
    return NULL;
}

static void *nap(void *arg)
{
    usleep(30000);
    return arg;
}

int main(int argc, char **argv)
{
    alarm(60);
    if (argc > 1 && strcmp(argv[1], "raise") == 0) {
        /* as servers do at start: the soft limit up to the hard one */
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    long max = sysconf(_SC_OPEN_MAX);
    int top = max > 5000 ? 5000 : (int)max + 1;
    int src = open("/dev/null", O_RDONLY);
    int done = 0, first_fail = -1, fail_errno = 0;
    for (int fd = 3; fd < top; fd++) {
        if (fd == src)
            continue;
        int r = fd % 2 ? dup3(src, fd, O_CLOEXEC) : dup2(src, fd);
        if (r == fd) {
            done++;
        } else if (first_fail < 0) {
            first_fail = fd;
            fail_errno = errno;
        }
    }
    printf("dup2 onto %d numbers; first failure at %d (%s)\n", done, first_fail,
           first_fail < 0 ? "none" : strerror(fail_errno));
    double cpu0 = cpu_seconds();
    struct timespec idle = {0, 300 * 1000 * 1000};
    nanosleep(&idle, NULL); /* every carrier idle: nothing may run */
    double used = cpu_seconds() - cpu0;
    printf("idle for 300 ms: %s\n", used < 0.1 ? "no CPU used" : "CPU used");
    if (used >= 0.1)
        fprintf(stderr, "idle CPU %.3f s\n", used);

    /* free a few numbers for what follows */
    for (int fd = 3; fd < 13; fd++)
        close(fd);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, nap, NULL);
    int sv[2];
    int sp = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pthread_t echo;
    pthread_create(&echo, NULL, pong, &sv[1]);
    int ok = 0;
    for (int i = 0; sp == 0 && i < 100; i++) {
        char c = (char)i, back = -1;
        if (write(sv[0], &c, 1) == 1 && read(sv[0], &back, 1) == 1 && back == c)
            ok++;
    }
    close(sv[0]);
    pthread_join(echo, NULL);
    close(sv[1]);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    struct pollfd none;
    int polled = poll(&none, 0, 40);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(20000);
        _exit(7);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("round trips %d/100, poll %d, child exit %d\n", ok, polled, WEXITSTATUS(status));

    for (int fd = 3; fd < top; fd++)
        close(fd);
    int open_left = 0;
    for (int fd = 3; fd < top; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            open_left++;
    printf("left open after closing: %d\n", open_left);
    usleep(50000); /* still alive with everything closed */
    printf("done\n");
    return 0;
}
