// exit_thread: a thread calls exit(3) while main waits in pthread_join, one
// thread sleeps and another waits to join the sleeper.  Proves the whole
// process ends at once with status 3, running atexit and flushing stdio.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_t sleeper_tid;

static void at_exit(void)
{
    printf("atexit handler ran\n");
}

static void *sleeper(void *arg)
{
    sleep(30);
    printf("sleeper woke up: exit did not end the process\n");
    return NULL;
}

static void *joiner(void *arg)
{
    pthread_join(sleeper_tid, NULL);
    printf("joiner returned: exit did not end the process\n");
    return NULL;
}

static void *exiter(void *arg)
{
    usleep(100000);
    printf("exiter: calling exit(3)\n"); // still in the stdio buffer
    exit(3);
}

static void spawn(pthread_t *tid, void *(*fn)(void *))
{
    int err = pthread_create(tid, NULL, fn, NULL);
    if (err) {
        fprintf(stderr, "pthread_create: %s\n", strerror(err));
        exit(1);
    }
}

int main(void)
{
    pthread_t joiner_tid, exiter_tid;
    alarm(60);
    atexit(at_exit);
    printf("main: buffered line written before any thread\n");
    spawn(&sleeper_tid, sleeper);
    spawn(&joiner_tid, joiner);
    spawn(&exiter_tid, exiter);
    pthread_join(exiter_tid, NULL);
    printf("main: join returned: exit did not end the process\n");
    return 1;
}
