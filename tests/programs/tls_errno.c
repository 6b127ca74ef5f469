// tls_errno: errno is per thread and a successful blocking call leaves it
// alone.  200 threads each set errno to a value of their own, make a blocking
// call that succeeds (sleeps, yield, socket read/write, poll and select that
// time out or find data, join, accept, connect, a contended mutex), and check
// errno afterwards.  Failing calls set errno in the calling thread only: a
// thread keeps its EAGAIN or EBADF across a sleep while others set theirs.
// Prints one line per call: how many of the checks saw errno changed.
// At -O2 gcc calls __errno_location once in worker() and keeps &errno in a
// register across every call below (it is declared const): the address must
// stay the thread's own through blocking and migration.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 200
#define ROUNDS 5

enum call {
    C_USLEEP,
    C_NANOSLEEP,
    C_CLOCK_NANOSLEEP,
    C_SCHED_YIELD,
    C_WRITE,
    C_READ,
    C_SEND,
    C_RECV,
    C_POLL_TIMEOUT,
    C_POLL_READY,
    C_SELECT_TIMEOUT,
    C_JOIN,
    C_MUTEX,
    C_CONNECT,
    C_ACCEPT,
    C_FAILED_EAGAIN,
    C_FAILED_EBADF,
    C_COUNT
};
static const char *const names[C_COUNT] = {
    "usleep",
    "nanosleep",
    "clock_nanosleep",
    "sched_yield",
    "write",
    "read",
    "send",
    "recv",
    "poll (timeout)",
    "poll (ready)",
    "select (timeout)",
    "pthread_join",
    "mutex_lock (contended)",
    "connect",
    "accept",
    "EAGAIN kept over a sleep",
    "EBADF kept over a sleep",
};

static atomic_long checks[C_COUNT], changed[C_COUNT], call_failed[C_COUNT];
static int pairs[NTHREADS / 2][2];
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static struct sockaddr_un listen_addr;
static int listen_fd;

// Set errno to `mine`, run the call through the macro's body, count a check.
#define CHECKED(call, mine, ok_expr)                                                               \
    do {                                                                                           \
        errno = (mine);                                                                            \
        int ok_ = (ok_expr);                                                                       \
        int seen_ = errno;                                                                         \
        atomic_fetch_add(&checks[call], 1);                                                        \
        if (!ok_)                                                                                  \
            atomic_fetch_add(&call_failed[call], 1);                                               \
        else if (seen_ != (mine))                                                                  \
            atomic_fetch_add(&changed[call], 1);                                                   \
    } while (0)

static void *sleeper(void *arg)
{
    usleep(2000);
    return arg;
}

static int join_a_sleeper(void)
{
    pthread_t t;
    int saved = errno; // pthread_create itself may touch errno (not checked here)
    if (pthread_create(&t, NULL, sleeper, NULL) != 0)
        return 0;
    errno = saved;
    return pthread_join(t, NULL) == 0;
}

static int connect_and_close(void)
{
    int saved = errno;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    errno = saved;
    if (fd < 0)
        return 0;
    int ok = connect(fd, (struct sockaddr *)&listen_addr, sizeof listen_addr) == 0;
    saved = errno;
    char c;
    if (ok)
        ok = read(fd, &c, 1) == 1; // the acceptor's byte: it really accepted us
    close(fd);
    errno = saved;
    return ok;
}

// One thread accepts every connection, checking errno around each accept.
static void *acceptor(void *arg)
{
    for (long i = 0; i < (long)(intptr_t)arg; i++) {
        int fd = -1;
        CHECKED(C_ACCEPT, 7000 + (int)i, (fd = accept(listen_fd, NULL, NULL)) >= 0);
        if (fd >= 0) {
            int saved = errno;
            (void)!write(fd, "a", 1);
            close(fd);
            errno = saved;
        }
    }
    return NULL;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = pairs[id / 2][id % 2];
    int empty[2];
    if (pipe2(empty, O_NONBLOCK) != 0)
        return NULL;
    for (int r = 0; r < ROUNDS; r++) {
        int mine = 10000 + id * 100 + r * 10; // never a real errno value
        char c = 'x';
        struct timespec ts = {0, 200000};
        CHECKED(C_USLEEP, mine + 1, usleep(100 + id % 5 * 100) == 0);
        CHECKED(C_NANOSLEEP, mine + 2, nanosleep(&ts, NULL) == 0);
        CHECKED(C_CLOCK_NANOSLEEP, mine + 3, clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == 0);
        CHECKED(C_SCHED_YIELD, mine + 4, sched_yield() == 0);
        // Pairs ping-pong: the even one writes first, the odd one blocks in read.
        if (id % 2 == 0) {
            CHECKED(C_WRITE, mine + 5, write(fd, &c, 1) == 1);
            CHECKED(C_READ, mine + 6, read(fd, &c, 1) == 1);
            CHECKED(C_SEND, mine + 7, send(fd, &c, 1, 0) == 1);
            CHECKED(C_RECV, mine + 8, recv(fd, &c, 1, 0) == 1);
        } else {
            CHECKED(C_READ, mine + 6, read(fd, &c, 1) == 1);
            CHECKED(C_WRITE, mine + 5, write(fd, &c, 1) == 1);
            CHECKED(C_RECV, mine + 8, recv(fd, &c, 1, 0) == 1);
            CHECKED(C_SEND, mine + 7, send(fd, &c, 1, 0) == 1);
        }
        struct pollfd pfd = {empty[0], POLLIN, 0};
        CHECKED(C_POLL_TIMEOUT, mine + 9, poll(&pfd, 1, 2) == 0);
        // The partner's write (or the one just above) makes fd readable soon.
        if (id % 2 == 0)
            (void)!write(fd, &c, 1);
        pfd = (struct pollfd){fd, POLLIN, 0};
        CHECKED(C_POLL_READY, mine + 10, poll(&pfd, 1, 5000) == 1 && read(fd, &c, 1) == 1);
        if (id % 2 == 1)
            (void)!write(fd, &c, 1);
        fd_set set;
        FD_ZERO(&set);
        FD_SET(empty[0], &set);
        struct timeval tv = {0, 1000};
        CHECKED(C_SELECT_TIMEOUT, mine + 11, select(empty[0] + 1, &set, NULL, NULL, &tv) == 0);
        if (r == 0)
            CHECKED(C_JOIN, mine + 12, join_a_sleeper());
        CHECKED(C_MUTEX, mine + 13, pthread_mutex_lock(&mutex) == 0);
        for (volatile int spin = 0; spin < 3000; spin++)
            ;
        pthread_mutex_unlock(&mutex);
        if (r == 1)
            CHECKED(C_CONNECT, mine + 14, connect_and_close());
        // A failing call's errno belongs to this thread even across a sleep.
        if (id % 2 == 0) {
            int ok = read(empty[0], &c, 1) < 0 && errno == EAGAIN;
            usleep(300);
            atomic_fetch_add(&checks[C_FAILED_EAGAIN], 1);
            if (!ok)
                atomic_fetch_add(&call_failed[C_FAILED_EAGAIN], 1);
            else if (errno != EAGAIN)
                atomic_fetch_add(&changed[C_FAILED_EAGAIN], 1);
        } else {
            int ok = close(-1) < 0 && errno == EBADF;
            sched_yield();
            usleep(300);
            atomic_fetch_add(&checks[C_FAILED_EBADF], 1);
            if (!ok)
                atomic_fetch_add(&call_failed[C_FAILED_EBADF], 1);
            else if (errno != EBADF)
                atomic_fetch_add(&changed[C_FAILED_EBADF], 1);
        }
    }
    close(empty[0]);
    close(empty[1]);
    return NULL;
}

static int start_listener(void)
{
    listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    listen_addr.sun_family = AF_UNIX;
    // Abstract address: nothing to clean up, unique per process.
    snprintf(listen_addr.sun_path + 1, sizeof listen_addr.sun_path - 1, "fz-tls-errno-%d",
             (int)getpid());
    return listen_fd >= 0 &&
           bind(listen_fd, (struct sockaddr *)&listen_addr, sizeof listen_addr) == 0 &&
           listen(listen_fd, NTHREADS) == 0;
}

int main(void)
{
    static pthread_t tids[NTHREADS];
    pthread_t acc;
    alarm(60);
    for (int i = 0; i < NTHREADS / 2; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) != 0) {
            perror("socketpair");
            return 1;
        }
    if (!start_listener()) {
        perror("listener");
        return 1;
    }
    pthread_create(&acc, NULL, acceptor, (void *)(intptr_t)NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        if (pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "create %d failed\n", i);
            return 1;
        }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(tids[i], NULL);
    pthread_join(acc, NULL);
    long bad = 0;
    for (int c = 0; c < C_COUNT; c++) {
        printf("%-26s checks %5ld, errno changed %ld, call failed %ld\n", names[c],
               atomic_load(&checks[c]), atomic_load(&changed[c]), atomic_load(&call_failed[c]));
        bad += atomic_load(&changed[c]) + atomic_load(&call_failed[c]);
    }
    printf("errno mismatches: %ld\n", bad);
    return bad ? 1 : 0;
}
