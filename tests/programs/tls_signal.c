// tls_signal: a signal handler runs in one of the program's threads and, for
// its duration, that thread does nothing else -- so a handler that changes a
// __thread variable and puts it back leaves that thread's value as it was.
// Two threads count in a __thread variable with plain (non-atomic) increments,
// sleeping or yielding now and then, while a child process sends 10000
// signals (or as many as it can in 2 s) whose handler adds a million to the
// interrupted thread's counter, touches errno, and takes both back.  The main
// thread waits for the child in a pipe read (SA_RESTART restarts it).  A
// handler running on the TLS of a thread that is at the same time running
// elsewhere (say, on an idle OS thread whose thread pointer still names a
// thread that moved on) loses the counters' increments.
// With the argument "read" the main thread waits in a pipe read instead of
// sleeping between waitpid(WNOHANG) polls.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIGNALS 10000
#define COUNTERS 2

__thread volatile long counter;
static atomic_int stop, handled;
static atomic_long lost;

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno;
    counter += 1000000;
    errno = ENOTRECOVERABLE; // a value nothing else here produces
    for (volatile int spin = 0; spin < 200; spin++)
        ;
    counter -= 1000000;
    errno = saved;
    atomic_fetch_add(&handled, 1);
}

static void *count(void *arg)
{
    (void)arg;
    long expect = 0;
    while (!atomic_load(&stop)) {
        for (int i = 0; i < 20000; i++)
            counter++;
        expect += 20000;
        errno = 0;
        if (counter != expect) {
            atomic_fetch_add(&lost, 1);
            counter = expect;
        }
        if (expect % 100000 == 0)
            usleep(100);
        else
            sched_yield();
        if (errno != 0 && errno != EINTR) // usleep may be interrupted
            atomic_fetch_add(&lost, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int wait_in_read = argc > 1 && strcmp(argv[1], "read") == 0;
    alarm(60);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t[COUNTERS];
    for (int i = 0; i < COUNTERS; i++)
        pthread_create(&t[i], NULL, count, NULL);
    int done[2];
    if (pipe(done) != 0)
        return 1;
    pid_t parent = getpid(), child = fork();
    if (child == 0) {
        close(done[0]);
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (int i = 0; i < SIGNALS; i++) {
            kill(parent, SIGUSR1);
            usleep(i % 8 ? 20 : 300);
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec >= 2) // enough on a loaded machine
                break;
        }
        _exit(0);
    }
    // Wait without blocking in waitpid (which a carrier may do in the
    // kernel, where the handler would run on the main thread's own TLS):
    // poll it between sleeps, or ("read") block in a pipe read that ends
    // when the child exits.
    close(done[1]);
    int status;
    if (wait_in_read) {
        char c;
        while (read(done[0], &c, 1) != 0)
            ;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            ;
    } else {
        while (waitpid(child, &status, WNOHANG) != child)
            usleep(1000);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < COUNTERS; i++)
        pthread_join(t[i], NULL);
    printf("signals sent, some handled; counters or errno disturbed %ld times\n",
           atomic_load(&lost));
    return atomic_load(&lost) ? 1 : 0;
}
