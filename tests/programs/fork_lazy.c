/* A fork child's OS threads: natively one until it creates a thread.
 * Fiberized, the child's carriers start with its first thread, so a child
 * that only execs or exits is one OS thread (a fast fork and a fast exit).
 * Prints the child's thread count before its first thread, then that the
 * thread ran. */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "threads_of.h"

static void *work(void *arg)
{
    return arg;
}

int main(void)
{
    int go[2];
    if (pipe(go) != 0)
        return 2;
    pid_t child = fork();
    if (child == 0) {
        char c;
        if (read(go[0], &c, 1) != 1) /* until the parent has counted */
            _exit(3);
        pthread_t t;
        void *ret = NULL;
        if (pthread_create(&t, NULL, work, (void *)"ran") != 0 || pthread_join(t, &ret) != 0)
            _exit(4);
        printf("the child's thread %s\n", (char *)ret);
        fflush(stdout);
        _exit(0);
    }
    usleep(100000); /* the child is in its read by now */
    printf("child threads before its first thread: %d\n", threads_of(child));
    fflush(stdout);
    if (write(go[1], "g", 1) != 1)
        return 2;
    int st;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    return 0;
}
