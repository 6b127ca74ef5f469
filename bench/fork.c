/* What a fork costs the program, whole: fork, the child's life, its exit
 * and the parent's waitpid, from one thread.  Three children:
 *  - one that exits at once (_exit), the common shell-out-then-exec shape
 *    minus the exec: fiberized, the child runs without the runtime until it
 *    needs fibers (preload/init.c), so this is fork and exit as natively;
 *  - one that execs /bin/true, what most fork children do;
 *  - one that starts a thread and joins it before exiting: fiberized, the
 *    runtime is rebuilt around the child's only thread then, so this shows
 *    what the child's first thread costs.
 * The parent has run a thread first (fiberized: its carriers are up, as in
 * any threaded program) and joined it, so natively it is one thread again
 * while fiberized its carriers and monitor stay (README: Limitations).  The
 * *_thread_alive rows fork again while one thread of the parent sleeps in
 * read(), the shape of a thread-per-connection server: natively that is a
 * second OS thread the kernel copies and shoots down TLBs for at every
 * fork, as it does for the fiberized runtime's threads.  Median of ROUNDS
 * each, in microseconds.  Prints metric<TAB>value<TAB>unit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 200

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

static void *nothing(void *arg)
{
    return arg;
}

/* Sleeps in read() until the pipe's write end closes. */
static void *sleeper(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) > 0)
        ;
    return NULL;
}

enum kind { EXIT, EXEC, THREAD };

static void child(enum kind k)
{
    if (k == EXEC) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    if (k == THREAD) {
        pthread_t t;
        if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
            _exit(2);
    }
    _exit(0);
}

static double median_us(enum kind k)
{
    static double lat[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        double t0 = now_us();
        pid_t pid = fork();
        if (pid < 0)
            abort();
        if (pid == 0)
            child(k);
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            abort();
        lat[i] = now_us() - t0;
    }
    qsort(lat, ROUNDS, sizeof lat[0], cmp);
    return lat[ROUNDS / 2];
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
    printf("fork_exit_waitpid\t%.1f\tus\n", median_us(EXIT));
    printf("fork_exec_true_waitpid\t%.1f\tus\n", median_us(EXEC));
    printf("fork_child_first_thread\t%.1f\tus\n", median_us(THREAD));
    int p[2];
    if (pipe(p) != 0 || pthread_create(&t, NULL, sleeper, &p[0]) != 0)
        abort();
    printf("fork_exit_waitpid_thread_alive\t%.1f\tus\n", median_us(EXIT));
    printf("fork_exec_true_waitpid_thread_alive\t%.1f\tus\n", median_us(EXEC));
    close(p[1]);
    pthread_join(t, NULL);
    return 0;
}
