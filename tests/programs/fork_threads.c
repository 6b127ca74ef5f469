/* fork from a threaded program, then threads in the child.
 *
 * While 20 threads of the parent sleep, one of them forks.  The child's
 * only thread is the forking one: it starts 100 threads that sleep, pass a
 * token through pipes and take a mutex, joins them, checks its own pid and
 * tid, and exits with a status the parent checks.  Then main forks too,
 * and a child that calls pthread_exit from its only thread ends with 0.
 * pthread_atfork handlers run once each, in the right process.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int prepared, in_parent, in_child;
static void on_prepare(void)
{
    atomic_fetch_add(&prepared, 1);
}
static void on_parent(void)
{
    atomic_fetch_add(&in_parent, 1);
}
static void on_child(void)
{
    atomic_fetch_add(&in_child, 1);
}

static void *napper(void *arg)
{
    usleep(300000);
    return arg;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static int ring[2];

static void *child_worker(void *arg)
{
    long id = (long)arg;
    usleep(1000 * (id % 20));
    char c;
    if (read(ring[0], &c, 1) != 1 || write(ring[1], &c, 1) != 1)
        exit(90);
    pthread_mutex_lock(&lock);
    counter += id;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int child_main(void)
{
    if (atomic_load(&in_child) != 1 || atomic_load(&in_parent) != 0)
        return 81;
    if (syscall(SYS_gettid) != getpid())
        return 82; /* the child's only thread is its main thread */
    if (pipe(ring) != 0 || write(ring[1], "t", 1) != 1)
        return 83;
    pthread_t t[100];
    for (long i = 0; i < 100; i++)
        if (pthread_create(&t[i], NULL, child_worker, (void *)i) != 0)
            return 84;
    for (int i = 0; i < 100; i++)
        pthread_join(t[i], NULL);
    return counter == 4950 ? 7 : 85;
}

static void *forker(void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_main());
    int status = 0;
    waitpid(pid, &status, 0);
    *(int *)arg = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return NULL;
}

int main(void)
{
    alarm(60);
    pthread_atfork(on_prepare, on_parent, on_child);
    pthread_t nappers[20], f;
    for (int i = 0; i < 20; i++)
        pthread_create(&nappers[i], NULL, napper, NULL);
    int status = -1;
    pthread_create(&f, NULL, forker, &status);
    pthread_join(f, NULL);
    printf("child of a thread: exit status %d\n", status);
    printf("atfork: prepare %d, parent %d, child %d (in the parent)\n", atomic_load(&prepared),
           atomic_load(&in_parent), atomic_load(&in_child));

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t;
        pthread_create(&t, NULL, napper, NULL);
        pthread_exit(NULL); /* the napper finishes, then the child exits 0 */
    }
    waitpid(pid, &status, 0);
    printf("child that called pthread_exit: %s %d\n", WIFEXITED(status) ? "exit" : "signal",
           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    for (int i = 0; i < 20; i++)
        pthread_join(nappers[i], NULL);
    return 0;
}
