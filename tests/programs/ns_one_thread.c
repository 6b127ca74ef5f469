/* unshare(CLONE_NEWUSER) needs a single-threaded process.  Natively a
 * program whose threads have all been joined is one; fiberized, unshare
 * first shrinks the runtime back to one OS thread (syscalls/namespace.c).
 * With a thread still alive it fails with EINVAL both ways.  One of the
 * joined threads resolved a name, which fiberize does on a blocking-pool
 * thread: the shrink ends those too (the old runtime left it for 10 s, and
 * unshare failed with EINVAL).  Prints each result, the threads the
 * process has after a successful one, and that a thread created
 * afterwards runs.  Where the system forbids user namespaces it prints
 * the same refusal both ways. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "threads_of.h"

static void *nothing(void *arg)
{
    return arg;
}

static void *resolve(void *arg)
{
    struct addrinfo *ai = NULL;
    if (getaddrinfo("localhost", "80", NULL, &ai) == 0)
        freeaddrinfo(ai);
    return arg;
}

static void *wait_for_close(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) > 0)
        ;
    return NULL;
}

/* patient: all threads are joined, but the kernel may not have released
 * the last one yet (threads_of.h): EINVAL then, natively too, for a
 * moment. */
static void try_unshare(const char *when, bool patient)
{
    int r = unshare(CLONE_NEWUSER);
    for (int i = 0; r != 0 && errno == EINVAL && patient && i < SETTLE_TRIES; i++) {
        usleep(1000);
        r = unshare(CLONE_NEWUSER);
    }
    printf("%s: unshare(CLONE_NEWUSER) = %d%s%s\n", when, r, r ? " " : "",
           r ? strerror(errno) : "");
    if (r == 0) /* with one alive, fiberize's own OS threads are counted too */
        printf("%s: threads after it: %d\n", when, threads_of(getpid()));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int p[2];
    if (pipe(p) != 0)
        return 2;
    pthread_t t;
    pthread_create(&t, NULL, wait_for_close, &p[0]);
    usleep(10000);
    try_unshare("a thread alive", false);
    close(p[1]);
    pthread_join(t, NULL);
    for (int i = 0; i < 4; i++) {
        pthread_create(&t, NULL, i == 2 ? resolve : nothing, NULL);
        pthread_join(t, NULL);
    }
    try_unshare("all threads joined", true);
    void *ret = NULL;
    int r = pthread_create(&t, NULL, nothing, (void *)42);
    if (r == 0)
        pthread_join(t, &ret);
    printf("a thread after it: %s\n", r == 0 && ret == (void *)42 ? "ran" : "failed");
    return 0;
}
