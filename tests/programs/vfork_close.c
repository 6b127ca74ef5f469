/* A vfork child shares the parent's memory until it execs.  Children that
 * close every inherited fd first (closefrom, as Python's subprocess and
 * many daemons do) and reset signal handlers must not disturb the parent:
 * here a thread stays blocked reading a pipe while other threads vfork 50
 * such children; it must then read its data, and the parent's handlers
 * must still be its own. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "libc_compat.h"

static int data_pipe[2];
static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen++;
}

static void *reader(void *arg)
{
    char buf[16] = {0};
    ssize_t r = read(data_pipe[0], buf, sizeof buf - 1);
    snprintf(arg, 64, "%zd:%s", r, r > 0 ? buf : strerror(-(int)r));
    return NULL;
}

static void *spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 25; i++) {
        pid_t pid = vfork();
        if (pid == 0) {
            signal(SIGUSR1, SIG_DFL);
            closefrom(3);
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
    }
    return NULL;
}

int main(void)
{
    alarm(30);
    signal(SIGUSR1, on_usr1);
    if (pipe(data_pipe))
        return 1;
    char got[64] = "";
    pthread_t r, s[2];
    pthread_create(&r, NULL, reader, got);
    usleep(50000);
    for (int i = 0; i < 2; i++)
        pthread_create(&s[i], NULL, spawner, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(s[i], NULL);
    (void)!write(data_pipe[1], "hello", 5);
    pthread_join(r, NULL);
    printf("blocked reader after 50 vfork children closed everything: %s\n", got);
    kill(getpid(), SIGUSR1);
    printf("the parent's SIGUSR1 handler still runs: %d\n", usr1_seen == 1);
    return 0;
}
