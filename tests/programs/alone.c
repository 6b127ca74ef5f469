/* A program that has created no thread yet runs as natively: one OS
 * thread (the runtime's other carriers and its monitor start with the
 * first thread), glibc's single-threaded paths on (libfiberize's start-up
 * probe thread had turned them off), and its blocking calls are the real
 * ones -- a read that waits for a child, waitpid, a sleep a signal ends
 * with EINTR after its handler ran.  Then one thread, and the same calls
 * again, now parked by the runtime.  Prints the same lines natively and
 * fiberized; the old runtime had 3 OS threads and glibc multi-threaded
 * before main.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#include <stdlib.h>
#include <sys/single_threaded.h>
#endif

static int os_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* glibc 2.35 keeps its single-threaded fact where fiberize cannot reset
 * it: the line is printed only where it can be compared. */
static void print_single_threaded(const char *when)
{
#ifdef __GLIBC__
    if (atoi(gnu_get_libc_version() + 2) >= 36)
        printf("libc single-threaded %s: %s\n", when, __libc_single_threaded ? "yes" : "no");
#else
    (void)when;
#endif
}

static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    handled++;
}

/* A child writes after 50 ms; the read waits for it; waitpid reaps it. */
static void child_round(const char *when)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        if (write(p[1], "hello", 5) != 5)
            _exit(1);
        _exit(7);
    }
    close(p[1]);
    char buf[16];
    ssize_t n = read(p[0], buf, sizeof buf);
    printf("read %s: %zd bytes \"%.*s\"\n", when, n, n > 0 ? (int)n : 0, buf);
    int st = 0;
    pid_t r = waitpid(pid, &st, 0);
    printf("waitpid %s: %s, exit %d\n", when, r == pid ? "reaped" : strerror(errno),
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    close(p[0]);
}

/* A sleep that SIGALRM (a handler without SA_RESTART) ends. */
static void sleep_round(const char *when)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    handled = 0;
    alarm(1);
    struct timespec ts = {10, 0};
    int r = nanosleep(&ts, &ts);
    printf("nanosleep %s: %s, handler ran %d, %s\n", when, r == 0 ? "slept" : strerror(errno),
           (int)handled, ts.tv_sec > 5 ? "most left" : "little left");
}

static void *nothing(void *arg)
{
    return arg;
}

int main(void)
{
    printf("OS threads before any thread: %d\n", os_threads());
    print_single_threaded("before any thread");
    child_round("before any thread");
    sleep_round("before any thread");
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 1;
    print_single_threaded("after a thread");
    child_round("after a thread");
    sleep_round("after a thread");
    return 0;
}
