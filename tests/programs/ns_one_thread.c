/* unshare(CLONE_NEWUSER) needs a single-threaded process.  Natively a
 * program whose threads have all been joined is one; fiberized, unshare
 * first shrinks the runtime back to one OS thread (syscalls/namespace.c).
 * With a thread still alive it fails with EINVAL both ways.  Prints each
 * result and that a thread created afterwards runs.  Where the system
 * forbids user namespaces it prints the same refusal both ways. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *nothing(void *arg)
{
    return arg;
}

static void *wait_for_close(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) > 0)
        ;
    return NULL;
}

static void try_unshare(const char *when)
{
    int r = unshare(CLONE_NEWUSER);
    printf("%s: unshare(CLONE_NEWUSER) = %d%s%s\n", when, r, r ? " " : "",
           r ? strerror(errno) : "");
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
    try_unshare("a thread alive");
    close(p[1]);
    pthread_join(t, NULL);
    for (int i = 0; i < 4; i++) {
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
    }
    try_unshare("all threads joined");
    void *ret = NULL;
    int r = pthread_create(&t, NULL, nothing, (void *)42);
    if (r == 0)
        pthread_join(t, &ret);
    printf("a thread after it: %s\n", r == 0 && ret == (void *)42 ? "ran" : "failed");
    return 0;
}
