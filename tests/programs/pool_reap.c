/* 500 children reaped concurrently by waitpid(pid) and by wait().
 *
 * Children 0..249 ("gated") are forked by their own threads, block on a
 * pipe until main closes it, then exit with i % 256; each forking thread
 * waits for its child with waitpid(pid).  Children 250..499 are forked by
 * main and exit at once; ten threads make 25 wait() calls each.  While the
 * gate is shut only the second half can exit, so the wait() callers reap
 * exactly those (concurrently with 250 blocked waitpid callers), then the
 * gate opens and the waitpid callers reap theirs.  Every pid must be reaped
 * exactly once with its own code, and a final wait() fails with ECHILD.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 500
#define GATED (CHILDREN / 2)
#define WAITERS 10

static pid_t pids[CHILDREN];
static atomic_int reaped[CHILDREN];
static int gate[2];
static atomic_int gated_ok, gated_forked, waited_ok, waited_gated, bad_status, unknown;

static int index_of(pid_t pid)
{
    for (int i = 0; i < CHILDREN; i++)
        if (pids[i] == pid)
            return i;
    return -1;
}

static pid_t fork_child(int i, int wait_for_gate)
{
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(gate[1]);
        if (wait_for_gate)
            while (read(gate[0], &c, 1) > 0)
                ;
        _exit(i % 256);
    }
    return pid;
}

static void *gated_thread(void *arg)
{
    int i = (int)(long)arg;
    pid_t pid = fork_child(i, 1);
    if (pid < 0)
        return NULL;
    pids[i] = pid;
    atomic_fetch_add(&gated_forked, 1);
    int st;
    pid_t got;
    do
        got = waitpid(pid, &st, 0);
    while (got < 0 && errno == EINTR);
    if (got == pid) {
        atomic_fetch_add(&reaped[i], 1);
        if (WIFEXITED(st) && WEXITSTATUS(st) == i % 256)
            atomic_fetch_add(&gated_ok, 1);
        else
            atomic_fetch_add(&bad_status, 1);
    }
    return NULL;
}

static void *wait_thread(void *arg)
{
    for (int k = 0; k < (CHILDREN - GATED) / WAITERS; k++) {
        int st;
        pid_t got = wait(&st);
        int i = got > 0 ? index_of(got) : -1;
        if (i < 0) {
            atomic_fetch_add(&unknown, 1);
            continue;
        }
        atomic_fetch_add(&reaped[i], 1);
        if (i < GATED)
            atomic_fetch_add(&waited_gated, 1);
        else if (WIFEXITED(st) && WEXITSTATUS(st) == i % 256)
            atomic_fetch_add(&waited_ok, 1);
        else
            atomic_fetch_add(&bad_status, 1);
    }
    return arg;
}

int main(void)
{
    if (pipe(gate) != 0)
        return 2;
    for (int i = GATED; i < CHILDREN; i++)
        if ((pids[i] = fork_child(i, 0)) < 0)
            return 3;

    pthread_t gated[GATED], waiters[WAITERS];
    for (long i = 0; i < GATED; i++)
        if (pthread_create(&gated[i], NULL, gated_thread, (void *)i) != 0)
            return 4;
    for (int i = 0; i < WAITERS; i++)
        if (pthread_create(&waiters[i], NULL, wait_thread, NULL) != 0)
            return 4;
    for (int i = 0; i < WAITERS; i++)
        pthread_join(waiters[i], NULL);

    /* every gated child was forked before the gate opens (a thread may
     * still be on its way into waitpid: that is fine) */
    while (atomic_load(&gated_forked) < GATED)
        usleep(1000);
    close(gate[1]);
    for (int i = 0; i < GATED; i++)
        pthread_join(gated[i], NULL);

    int once = 0;
    for (int i = 0; i < CHILDREN; i++)
        once += atomic_load(&reaped[i]) == 1;
    errno = 0;
    pid_t last = wait(NULL);
    int echild = last == -1 && errno == ECHILD;

    printf("forked %d children\n", CHILDREN);
    printf("wait() reaped %d early exits with their codes, %d gated ones, %d unknown\n",
           atomic_load(&waited_ok), atomic_load(&waited_gated), atomic_load(&unknown));
    printf("waitpid(pid) reaped %d gated children with their codes\n", atomic_load(&gated_ok));
    printf("bad statuses: %d\n", atomic_load(&bad_status));
    printf("reaped exactly once: %d of %d\n", once, CHILDREN);
    printf("final wait(): %s\n", echild ? "ECHILD" : "not ECHILD");
    int ok = once == CHILDREN && echild && atomic_load(&gated_ok) == GATED &&
             atomic_load(&waited_ok) == CHILDREN - GATED;
    printf("%s\n", ok ? "done" : "FAILED");
    return ok ? 0 : 1;
}
