/* A vfork child that sleeps or polls before it execs, while other threads
 * keep the carriers busy.  Natively the child blocks in its own task and
 * the parent waits; then the parent goes on.  Under fiberize the child
 * must not park: a parked child would be resumed by another carrier in
 * the parent process, which would then exec the child's program.  The same
 * for clone(CLONE_VM | CLONE_VFORK) with the child's stack on the caller's. */
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop;

static void *busy(void *arg)
{
    while (!atomic_load(&stop))
        usleep(500);
    return arg;
}

/* 0 if a child that waited `how` before its exec ran and exited 0. */
static int one_child(int how, const char *msg)
{
    pid_t pid = vfork();
    if (pid == 0) {
        if (how == 0) {
            usleep(2000);
        } else if (how == 1) {
            poll(NULL, 0, 2);
        } else {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        execl("/proc/self/exe", "vfork_park", "child", msg, (char *)NULL);
        _exit(127);
    }
    int status = -1;
    return pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
           WEXITSTATUS(status) != 0;
}

static int clone_child(void *arg)
{
    usleep(2000);
    execl("/proc/self/exe", "vfork_park", "child", (char *)arg, (char *)NULL);
    return 127;
}

/* clone(CLONE_VM | CLONE_VFORK) with the child's stack in the caller's
 * frame, as small spawn helpers do. */
static int one_clone_child(const char *msg)
{
    char stack[64 * 1024] __attribute__((aligned(16)));
    pid_t pid =
        clone(clone_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)msg);
    int status = -1;
    return pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
           WEXITSTATUS(status) != 0;
}

static void *spawn(void *arg)
{
    long id = (long)arg, failed = 0;
    for (int i = 0; i < 10; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "child %ld.%d", id, i);
        failed += i == 9 ? one_clone_child(msg) : one_child(i % 3, msg);
    }
    return (void *)failed;
}

int main(int argc, char **argv)
{
    /* the children exec this program again (an instrumented build stays
     * loadable under a sanitizer's preload) */
    if (argc > 2 && strcmp(argv[1], "child") == 0) {
        if (strcmp(argv[2], "child of main ran") == 0)
            printf("%s\n", argv[2]);
        return 0;
    }
    alarm(60);
    pthread_t b[2], s[3];
    for (int i = 0; i < 2; i++)
        pthread_create(&b[i], NULL, busy, NULL);
    long failed = 0;
    for (long i = 0; i < 3; i++)
        pthread_create(&s[i], NULL, spawn, (void *)i);
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(s[i], &r);
        failed += (long)r;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(b[i], NULL);
    /* and from the main thread, the simplest case */
    pid_t pid = vfork();
    if (pid == 0) {
        usleep(10000);
        execl("/proc/self/exe", "vfork_park", "child", "child of main ran", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("30 vfork children from threads: %ld failed; main's child exit %d\n", failed,
           WEXITSTATUS(status));
    printf("parent still running\n");
    return 0;
}
