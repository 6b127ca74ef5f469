/* The blocking-I/O contract as natively: EAGAIN on fds the program made
 * non-blocking, poll/select timeouts and error bits, SO_RCVTIMEO, shutdown
 * waking a reader, EOF, EPIPE and its SIGPIPE (handled or blocked),
 * zero-byte reads and writes of an empty stream socket, partial-free 4 MiB
 * socket write, and a fiber parked on an fd that another thread closes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define CHECK(c, what)                                                                             \
    do {                                                                                           \
        if (c)                                                                                     \
            printf("ok %s\n", what);                                                               \
        else {                                                                                     \
            printf("FAIL %s (errno %d)\n", what, errno);                                           \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

/* A thread that blocks SIGPIPE (its action the default, which ends the
 * process) writes to a closed peer: the signal stays pending on it, and
 * no other thread gets it, even once the thread has exited with one. */
static void *blocked_sigpipe(void *a)
{
    sigset_t pipe_only, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    close(s[1]);
    CHECK(write(s[0], "x", 1) == -1 && errno == EPIPE, "EPIPE with SIGPIPE blocked");
    sigpending(&pending);
    CHECK(sigismember(&pending, SIGPIPE), "SIGPIPE pending on the writing thread");
    struct timespec none = {0, 0};
    CHECK(sigtimedwait(&pipe_only, NULL, &none) == SIGPIPE, "and its sigtimedwait takes it");
    /* more, left pending: they go with the thread */
    CHECK(write(s[0], "x", 1) == -1 && errno == EPIPE, "EPIPE again");
    int file = open("/proc/self/exe", O_RDONLY);
    CHECK(sendfile(s[0], file, NULL, 16) == -1 && errno == EPIPE, "sendfile: EPIPE");
    close(file);
    struct iovec one = {"x", 1};
    struct mmsghdr msgs[1] = {{.msg_hdr = {.msg_iov = &one, .msg_iovlen = 1}}};
    CHECK(sendmmsg(s[0], msgs, 1, 0) == -1 && errno == EPIPE, "sendmmsg: EPIPE");
    CHECK(sendmmsg(s[0], msgs, 1, MSG_DONTWAIT) == -1 && errno == EPIPE,
          "sendmmsg with MSG_DONTWAIT: EPIPE");
    close(s[0]);
    return a;
}

static void *shutdown_later(void *a)
{
    usleep(100000);
    shutdown((int)(long)a, SHUT_RD);
    return 0;
}
static void *write_later(void *a)
{
    usleep(100000);
    (void)!write((int)(long)a, "x", 1);
    return 0;
}
static int big[2];
static void *drain(void *a)
{
    char buf[65536];
    long n = 0, r;
    while ((r = read(big[1], buf, sizeof buf)) > 0)
        n += r;
    *(long *)a = n;
    return 0;
}

int main(void)
{
    alarm(60);
    signal(SIGPIPE, SIG_IGN);
    int p[2], s[2];
    char c;
    pipe(p);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    CHECK(read(p[0], &c, 1) == -1 && errno == EAGAIN, "O_NONBLOCK pipe read gives EAGAIN");
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK, "F_GETFL shows the program's O_NONBLOCK");
    CHECK(!(fcntl(p[1], F_GETFL) & O_NONBLOCK), "other end stays blocking");
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    CHECK(recv(s[0], &c, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN, "MSG_DONTWAIT gives EAGAIN");
    int on = 1;
    ioctl(s[0], FIONBIO, &on);
    CHECK(read(s[0], &c, 1) == -1 && errno == EAGAIN, "FIONBIO gives EAGAIN");
    on = 0;
    ioctl(s[0], FIONBIO, &on);

    struct pollfd pf = {s[0], POLLIN, 0};
    double t0 = now();
    CHECK(poll(&pf, 1, 150) == 0, "poll times out with 0");
    CHECK(now() - t0 >= 0.149, "poll timeout not early");
    CHECK(poll(&pf, 1, 0) == 0, "poll with timeout 0");
    pthread_t t;
    pthread_create(&t, 0, write_later, (void *)(long)s[1]);
    CHECK(poll(&pf, 1, -1) == 1 && (pf.revents & POLLIN), "infinite poll wakes on data");
    pthread_join(t, 0);
    read(s[0], &c, 1);
    struct pollfd bad = {12345, POLLIN, 0};
    CHECK(poll(&bad, 1, 100) == 1 && bad.revents == POLLNVAL, "POLLNVAL for a closed fd");
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(s[0], &rs);
    struct timeval tv = {0, 120000};
    t0 = now();
    CHECK(select(s[0] + 1, &rs, 0, 0, &tv) == 0 && now() - t0 >= 0.119, "select times out");

    struct timeval rcv = {0, 150000};
    setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    t0 = now();
    CHECK(read(s[0], &c, 1) == -1 && errno == EAGAIN && now() - t0 >= 0.149,
          "SO_RCVTIMEO ends a read with EAGAIN");
    rcv.tv_usec = 0;
    setsockopt(s[0], SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);

    pthread_create(&t, 0, shutdown_later, (void *)(long)s[0]);
    CHECK(read(s[0], &c, 1) == 0, "shutdown(SHUT_RD) wakes a blocked reader with EOF");
    pthread_join(t, 0);

    /* read(fd, buf, 0) returns 0 at once, data or not: a recv of zero
     * bytes on a stream socket would wait for one */
    int z[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, z);
    struct iovec none[2] = {{&c, 0}, {&c, 0}};
    CHECK(read(z[0], &c, 0) == 0, "a zero-byte read of an empty socket returns 0");
    CHECK(readv(z[0], none, 2) == 0, "a readv of two empty buffers returns 0");
    CHECK(write(z[1], &c, 0) == 0, "a zero-byte write returns 0");
    CHECK(recv(z[0], &c, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN, "and sent nothing");
    char two[2];
    struct iovec halves[2] = {{&two[0], 1}, {&two[1], 1}};
    CHECK(writev(z[1], halves, 2) == 2 && write(z[1], "c", 1) == 1, "writev then write");
    two[0] = two[1] = 0;
    CHECK(readv(z[0], halves, 2) == 2 && read(z[0], &c, 1) == 1, "readv then read");
    close(z[0]);
    close(z[1]);

    close(s[1]);
    int q[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, q);
    close(q[1]);
    CHECK(read(q[0], &c, 1) == 0, "EOF after the peer closes");
    CHECK(write(q[0], "x", 1) == -1 && errno == EPIPE, "EPIPE writing to a closed peer");
    signal(SIGPIPE, SIG_DFL);
    pthread_create(&t, 0, blocked_sigpipe, NULL);
    pthread_join(t, 0);
    usleep(20000); /* on the writer's carrier, other threads run now */
    signal(SIGPIPE, on_sigpipe);
    CHECK(write(q[0], "x", 1) == -1 && errno == EPIPE && sigpipes == 1,
          "and SIGPIPE with it, once");
    int nobody[2];
    pipe(nobody);
    close(nobody[0]);
    CHECK(write(nobody[1], "x", 1) == -1 && errno == EPIPE && sigpipes == 2,
          "a pipe without a reader: EPIPE and SIGPIPE");
    close(nobody[1]);
    int gone[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, gone);
    close(gone[1]);
    FILE *out = fdopen(gone[0], "w");
    fputs("line\n", out);
    CHECK(fflush(out) == EOF && errno == EPIPE && sigpipes == 3,
          "stdio's flush to a closed peer: EPIPE and SIGPIPE");
    fclose(out);
    signal(SIGPIPE, SIG_IGN);

    socketpair(AF_UNIX, SOCK_STREAM, 0, big);
    long got = 0;
    pthread_create(&t, 0, drain, &got);
    size_t len = 4 << 20;
    char *buf = calloc(1, len);
    CHECK(write(big[0], buf, len) == (ssize_t)len, "a blocking 4 MiB write writes it all");
    close(big[0]);
    pthread_join(t, 0);
    CHECK(got == (long)len, "the reader got every byte");
    free(buf);
    printf("%d failures\n", failures);
    return failures != 0;
}
