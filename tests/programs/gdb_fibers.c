/* A program for tests/bats/observe.bats's gdb cases: three threads parked
 * in known places (two in a condition wait under wait_for_go, one in a
 * nanosleep under nap_for_an_hour) and main reading a line from stdin.
 * It prints "ready PID", and once the line arrives it releases the
 * waiters, joins them, cancels the napper and prints "done": so a test
 * that attached gdb, looked at fibers and detached can check the program
 * still runs correctly afterwards. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static bool go;

__attribute__((noinline)) static void wait_for_go(void)
{
    pthread_mutex_lock(&lock);
    while (!go)
        pthread_cond_wait(&go_cond, &lock);
    pthread_mutex_unlock(&lock);
}

static void *waiter(void *arg)
{
    (void)arg;
    wait_for_go();
    return NULL;
}

__attribute__((noinline)) static void nap_for_an_hour(void)
{
    struct timespec hour = {3600, 0};
    nanosleep(&hour, NULL);
}

static void *napper(void *arg)
{
    (void)arg;
    nap_for_an_hour();
    return NULL;
}

int main(void)
{
    pthread_t w[2], n;
    for (int i = 0; i < 2; i++)
        pthread_create(&w[i], NULL, waiter, NULL);
    pthread_create(&n, NULL, napper, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    pthread_mutex_lock(&lock);
    go = true;
    pthread_cond_broadcast(&go_cond);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    pthread_cancel(n);
    pthread_join(n, NULL);
    printf("done\n");
    return 0;
}
