/* Starting processes from threads, every way libc offers: posix_spawn,
 * fork+execve, vfork+execve, popen, system -- each from its own thread,
 * with a statically linked child among them.  Each child reports the
 * signals it starts with blocked: a child inherits its parent thread's
 * mask, and fiberize must not leak its own (pool threads block every
 * signal).  Output is in a fixed order: threads take turns. */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static char static_child[4096];
static char mask_cmd[] = "grep -c '^SigBlk:\t0000000000000000$' /proc/self/status";

static int status_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void *with_posix_spawn(void *arg)
{
    (void)arg;
    char *argv[] = {static_child, "posix_spawn", NULL};
    pid_t pid;
    int status;
    if (posix_spawn(&pid, static_child, NULL, NULL, argv, environ) != 0)
        return "posix_spawn failed";
    waitpid(pid, &status, 0);
    printf("posix_spawn: exit %d\n", status_code(status));
    return NULL;
}

static void *with_fork_exec(void *arg)
{
    (void)arg;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {static_child, "fork", "execve", NULL};
        execve(static_child, argv, environ);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("fork+execve: exit %d\n", status_code(status));
    return NULL;
}

static void *with_vfork_exec(void *arg)
{
    (void)arg;
    fflush(stdout);
    pid_t pid = vfork();
    if (pid == 0) {
        char *argv[] = {"/bin/sh", "-c", mask_cmd, NULL};
        execve("/bin/sh", argv, environ);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("vfork+execve: exit %d\n", status_code(status));
    return NULL;
}

static void *with_popen(void *arg)
{
    (void)arg;
    FILE *p = popen(mask_cmd, "r");
    char line[64] = "";
    if (!p || !fgets(line, sizeof line, p))
        return "popen failed";
    printf("popen child, unblocked mask: %s", line);
    printf("pclose: exit %d\n", status_code(pclose(p)));
    return NULL;
}

static void *with_system(void *arg)
{
    (void)arg;
    fflush(stdout);
    printf("system: exit %d\n", status_code(system(mask_cmd)));
    fflush(stdout);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s system; exit 7", static_child);
    printf("system static: exit %d\n", status_code(system(cmd)));
    /* a thread's own mask is what its child starts with */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    with_posix_spawn(NULL);
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    snprintf(static_child, sizeof static_child, "%s", argv[0]);
    char *slash = strrchr(static_child, '/');
    snprintf(slash ? slash + 1 : static_child, 64, "static_child");
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *(*ways[])(void *) = {with_posix_spawn, with_fork_exec, with_vfork_exec, with_popen,
                               with_system};
    for (unsigned i = 0; i < sizeof ways / sizeof ways[0]; i++) {
        pthread_t t;
        void *failed;
        pthread_create(&t, NULL, ways[i], NULL);
        pthread_join(t, &failed);
        if (failed)
            printf("%s\n", (char *)failed);
    }
    return 0;
}
