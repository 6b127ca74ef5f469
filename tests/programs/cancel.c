/* pthread_cancel at the blocking cancellation points: a thread parked in
 * sleep, nanosleep, read, accept, poll, pthread_cond_wait, sem_wait,
 * pthread_join or pause is cancelled at once, runs its cleanup handlers
 * (a condvar waiter holding its mutex again) and joins as PTHREAD_CANCELED.
 * With cancellation disabled the request waits until it is enabled (and the
 * thread's later blocking calls block in full: glibc 2.34/2.35 keep the
 * disabled state in a byte of their own, not in cancelhandling), and a
 * request made before a blocking call acts when the call would block. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static int pipefd[2], listener;
static pthread_t long_sleeper;
static volatile int cleaned, held_in_cleanup;

static void cleanup(void *arg)
{
    (void)arg;
    cleaned = 1;
}

static void cleanup_unlock(void *arg)
{
    (void)arg;
    held_in_cleanup = pthread_mutex_trylock(&mu) != 0; /* we hold it: EBUSY */
    cleaned = 1;
    pthread_mutex_unlock(&mu);
}

static void *blocker(void *arg)
{
    const char *what = arg;
    char c;
    pthread_cleanup_push(cleanup, NULL);
    if (!strcmp(what, "sleep"))
        sleep(100);
    else if (!strcmp(what, "nanosleep")) {
        struct timespec ts = {100, 0};
        nanosleep(&ts, NULL);
    } else if (!strcmp(what, "read"))
        (void)!read(pipefd[0], &c, 1);
    else if (!strcmp(what, "accept"))
        accept(listener, NULL, NULL);
    else if (!strcmp(what, "poll")) {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        poll(&p, 1, -1);
    } else if (!strcmp(what, "sem_wait"))
        sem_wait(&sem);
    else if (!strcmp(what, "join"))
        pthread_join(long_sleeper, NULL);
    else if (!strcmp(what, "pause"))
        pause();
    pthread_cleanup_pop(0);
    return (void *)"returned";
}

static void *cond_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    pthread_cleanup_push(cleanup_unlock, NULL);
    for (;;)
        pthread_cond_wait(&cv, &mu);
    pthread_cleanup_pop(1);
    return NULL;
}

static int full_sleeps; /* of the disabled thread, after the request */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *disabled_then_enabled(void *arg)
{
    (void)arg;
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    usleep(100000); /* the cancel arrives here and must wait */
    for (int i = 0; i < 3; i++) {
        double start = now_ms();
        if (usleep(20000) == 0 && now_ms() - start >= 19.5)
            full_sleeps++;
    }
    cleaned = 2;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    pthread_cleanup_push(cleanup, NULL);
    sleep(100);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *sleepy(void *arg)
{
    sleep(100);
    return arg;
}

static void cancel_case(const char *what, void *(*fn)(void *), void *arg)
{
    pthread_t t;
    void *result;
    cleaned = 0;
    pthread_create(&t, NULL, fn, arg);
    usleep(50000);
    int err = pthread_cancel(t);
    pthread_join(t, &result);
    printf("%-12s cancel %d, %s, cleanup ran %d\n", what, err,
           result == PTHREAD_CANCELED ? "canceled" : "not canceled", cleaned);
}

int main(void)
{
    alarm(30);
    sem_init(&sem, 0, 0);
    if (pipe(pipefd))
        return 1;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(listener, (struct sockaddr *)&sa, sizeof sa);
    listen(listener, 8);
    pthread_create(&long_sleeper, NULL, sleepy, NULL);

    const char *cases[] = {"sleep", "nanosleep", "read", "accept",
                           "poll",  "sem_wait",  "join", "pause"};
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cancel_case(cases[i], blocker, (void *)cases[i]);
    held_in_cleanup = 0;
    cancel_case("cond_wait", cond_waiter, NULL);
    printf("cond_wait    the mutex was held in the cleanup handler: %d, free after: %d\n",
           held_in_cleanup, pthread_mutex_trylock(&mu) == 0);
    pthread_mutex_unlock(&mu);
    cancel_case("disabled", disabled_then_enabled, NULL);
    printf("disabled     later sleeps that slept in full: %d of 3\n", full_sleeps);

    pthread_cancel(long_sleeper);
    void *r;
    pthread_join(long_sleeper, &r);
    printf("long sleeper canceled: %d\n", r == PTHREAD_CANCELED);
    return 0;
}
