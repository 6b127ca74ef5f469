/* More of the blocking-I/O contract: recvmmsg/sendmmsg on blocking sockets,
 * sendfile to a socket a slow reader drains (every byte, in order),
 * epoll_wait/epoll_pwait2 on the program's own epoll fd with timeouts, and
 * which waits a signal handler interrupts: with SA_RESTART a read goes on
 * but sleep, poll and epoll_wait still end early, as signal(7) says. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "libc_compat.h"

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

/* ---- recvmmsg / sendmmsg --------------------------------------------- */

#define NMSG 8
static int dgram[2];

static void *send_slowly(void *arg)
{
    for (int i = 0; i < NMSG; i++) {
        usleep(20000);
        char m[16];
        int n = snprintf(m, sizeof m, "msg%d", i);
        send(dgram[1], m, (size_t)n, 0);
    }
    return arg;
}

static void batches(void)
{
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram);
    pthread_t t;
    pthread_create(&t, NULL, send_slowly, NULL);
    char bufs[NMSG][16];
    struct iovec iov[NMSG];
    struct mmsghdr vec[NMSG];
    memset(vec, 0, sizeof vec);
    for (int i = 0; i < NMSG; i++) {
        iov[i] = (struct iovec){bufs[i], sizeof bufs[i]};
        vec[i].msg_hdr.msg_iov = &iov[i];
        vec[i].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(dgram[0], vec, 3, MSG_WAITFORONE, NULL);
    CHECK(r >= 1, "recvmmsg MSG_WAITFORONE waits for a datagram");
    int got = r > 0 ? r : 0;
    int in_order = 1;
    while (got < NMSG) {
        r = recvmmsg(dgram[0], vec + got, (unsigned)(NMSG - got), 0, NULL);
        if (r <= 0)
            break;
        got += r;
    }
    for (int i = 0; i < got; i++) {
        char want[16];
        int n = snprintf(want, sizeof want, "msg%d", i);
        if (vec[i].msg_len != (unsigned)n || memcmp(bufs[i], want, (size_t)n) != 0)
            in_order = 0;
    }
    CHECK(got == NMSG && in_order, "blocking recvmmsg collects every datagram in order");
    pthread_join(t, NULL);

    for (int i = 0; i < NMSG; i++) {
        int n = snprintf(bufs[i], sizeof bufs[i], "back%d", i);
        iov[i].iov_len = (size_t)n;
    }
    CHECK(sendmmsg(dgram[1], vec, NMSG, 0) == NMSG, "sendmmsg sends the whole batch");
    char b[16];
    int ok = 1;
    for (int i = 0; i < NMSG; i++) {
        ssize_t n = recv(dgram[0], b, sizeof b, 0);
        if (n != (ssize_t)iov[i].iov_len || memcmp(b, bufs[i], (size_t)n) != 0)
            ok = 0;
    }
    CHECK(ok, "the batch arrives whole and in order");
    close(dgram[0]);
    close(dgram[1]);
}

/* ---- sendfile --------------------------------------------------------- */

#define FILE_BYTES (3 << 20)
static int stream[2];

static void *slow_reader(void *arg)
{
    unsigned long sum = 0, n = 0;
    unsigned char buf[4096];
    ssize_t r;
    while ((r = read(stream[1], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            sum = sum * 31 + buf[i];
        n += (unsigned long)r;
        if (n % (256 << 10) < 4096)
            usleep(2000); /* let the sender fill the buffer and park */
    }
    unsigned long *out = arg;
    out[0] = n;
    out[1] = sum;
    return NULL;
}

static void send_a_file(void)
{
    char path[] = "/tmp/fz-io-more-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    unsigned char *data = malloc(FILE_BYTES);
    unsigned long want = 0;
    for (int i = 0; i < FILE_BYTES; i++) {
        data[i] = (unsigned char)(i * 7 + i / 4096);
        want = want * 31 + data[i];
    }
    CHECK(write(fd, data, FILE_BYTES) == FILE_BYTES, "write the file");
    free(data);
    socketpair(AF_UNIX, SOCK_STREAM, 0, stream);
    unsigned long result[2] = {0, 0};
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, result);
    off_t off = 0;
    ssize_t sent = sendfile(stream[0], fd, &off, FILE_BYTES);
    CHECK(sent == FILE_BYTES && off == FILE_BYTES, "blocking sendfile moves the whole file");
    close(stream[0]);
    pthread_join(t, NULL);
    CHECK(result[0] == FILE_BYTES && result[1] == want, "the reader got every byte in order");
    off = FILE_BYTES;
    int p[2];
    pipe(p);
    CHECK(sendfile(p[1], fd, &off, 100) == 0, "sendfile at end of file returns 0");
    close(p[0]);
    close(p[1]);
    close(stream[1]);
    close(fd);
}

/* ---- epoll on the program's own epoll fd ----------------------------- */

static int ep_pipe[2];

static void *write_later(void *arg)
{
    usleep(50000);
    (void)!write(ep_pipe[1], "x", 1);
    return arg;
}

static void own_epoll(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    pipe(ep_pipe);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 42}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, ep_pipe[0], &ev);
    double t0 = now();
    CHECK(epoll_wait(ep, out, 4, 100) == 0 && now() - t0 >= 0.099, "epoll_wait times out");
    struct timespec ts = {0, 80000000};
    t0 = now();
    CHECK(epoll_pwait2(ep, out, 4, &ts, NULL) == 0 && now() - t0 >= 0.079,
          "epoll_pwait2 times out");
    pthread_t t;
    pthread_create(&t, NULL, write_later, NULL);
    int n = epoll_wait(ep, out, 4, -1);
    CHECK(n == 1 && out[0].data.u32 == 42, "epoll_wait wakes on the event");
    pthread_join(t, NULL);
    CHECK(epoll_wait(ep, out, 0, 10) == -1 && errno == EINVAL, "epoll_wait maxevents 0: EINVAL");
    ts.tv_nsec = 1000000000;
    CHECK(epoll_pwait2(ep, out, 4, &ts, NULL) == -1 && errno == EINVAL,
          "epoll_pwait2 bad timespec: EINVAL");
    close(ep);
    close(ep_pipe[0]);
    close(ep_pipe[1]);
}

/* ---- SA_RESTART -------------------------------------------------------- */

static volatile sig_atomic_t alarms;
static int rs_pipe[2];

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void arm(int ms)
{
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void *feed_later(void *arg)
{
    usleep(300000);
    (void)!write(rs_pipe[1], "y", 1);
    return arg;
}

static void restart_semantics(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);

    alarms = 0;
    arm(100);
    struct timespec req = {2, 0};
    double t0 = now();
    int r = nanosleep(&req, NULL);
    CHECK(r == -1 && errno == EINTR && alarms == 1 && now() - t0 < 1.5,
          "SA_RESTART handler still ends nanosleep with EINTR");

    int p[2];
    pipe(p);
    struct pollfd pf = {p[0], POLLIN, 0};
    alarms = 0;
    arm(100);
    t0 = now();
    r = poll(&pf, 1, 2000);
    CHECK(r == -1 && errno == EINTR && now() - t0 < 1.5, "SA_RESTART handler ends poll with EINTR");
    close(p[0]);
    close(p[1]);

    pipe(rs_pipe);
    pthread_t t;
    pthread_create(&t, NULL, feed_later, NULL);
    alarms = 0;
    arm(100);
    char c = 0;
    ssize_t n = read(rs_pipe[0], &c, 1);
    CHECK(n == 1 && c == 'y' && alarms == 1, "SA_RESTART handler: the read goes on");
    pthread_join(t, NULL);
    close(rs_pipe[0]);
    close(rs_pipe[1]);

    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    pipe(rs_pipe);
    alarms = 0;
    arm(100);
    n = read(rs_pipe[0], &c, 1);
    CHECK(n == -1 && errno == EINTR && alarms == 1, "handler without SA_RESTART: read gets EINTR");
    close(rs_pipe[0]);
    close(rs_pipe[1]);
    signal(SIGALRM, SIG_DFL);
}

int main(void)
{
    batches();
    send_a_file();
    own_epoll();
    restart_semantics();
    alarm(60);
    printf("%d failures\n", failures);
    return failures != 0;
}
