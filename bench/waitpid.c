/* How soon waitpid(pid) returns once the child exits.  Each child blocks
 * reading a pipe; the parent writes a byte and times until waitpid returns.
 * The child reads and exits through raw system calls, so that its own
 * wake-up and exit cost the same in both runs (a fiberized child's
 * interposed read would park in its own reactor).  Fiberized, the parent's
 * wait parks on a pidfd in the reactor instead of sleeping in the kernel.
 * Median of 200 children; also children reaped per second when 50 threads
 * each start and wait for their own.  Prints metric<TAB>value<TAB>unit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILDREN 200
#define THREADS 50
#define EACH 10

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One child: fork, let it go, wait.  Returns the microseconds from the go
 * byte to waitpid's return. */
static double one_child(void)
{
    int go[2];
    if (pipe(go) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        long n = syscall(SYS_read, go[0], &c, 1);
        syscall(SYS_exit_group, n == 1 ? 0 : 1);
    }
    close(go[0]);
    usleep(1000); /* the child is blocked in read by now */
    double t0 = now_us();
    if (write(go[1], "g", 1) != 1)
        abort();
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        abort();
    double t = now_us() - t0;
    close(go[1]);
    return t;
}

static void *reaper(void *arg)
{
    for (int i = 0; i < EACH; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (waitpid(pid, NULL, 0) != pid)
            abort();
    }
    return arg;
}

int main(void)
{
    static double lat[CHILDREN];
    for (int i = 0; i < CHILDREN; i++)
        lat[i] = one_child();
    qsort(lat, CHILDREN, sizeof lat[0], cmp);
    printf("waitpid_exit_to_return_median\t%.1f\tus\n", lat[CHILDREN / 2]);
    printf("waitpid_exit_to_return_p90\t%.1f\tus\n", lat[CHILDREN * 9 / 10]);

    pthread_t t[THREADS];
    double start = now_us();
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, reaper, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("fork_waitpid_50threads\t%.0f\tchildren/s\n",
           THREADS * EACH / ((now_us() - start) / 1e6));
    return 0;
}
