/* A blocked call keeps its file when another thread closes the fd.
 *
 * Natively a thread blocked in read, recv, write or accept holds a
 * reference to the file: close(2) from another thread frees the number but
 * not the file, so the call goes on waiting, the peer sees no hang-up,
 * and data sent later reaches the blocked call (even after the number was
 * reused for another file).  Only when the call returns is the file
 * released.  Closing the number by dup2, close_range or fclose is the
 * same.  Each case prints what the blocked call got and what the other
 * side saw; the output must be the native one (bats compares).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define SETTLE_US 200000 /* long enough for a thread to block */

static int fd_under_test;
static char got[64];

static void *reader(void *arg)
{
    char buf[32] = {0};
    ssize_t n = arg ? recv(fd_under_test, buf, sizeof buf - 1, 0)
                    : read(fd_under_test, buf, sizeof buf - 1);
    if (n > 0)
        snprintf(got, sizeof got, "data %s", buf);
    else
        snprintf(got, sizeof got, n == 0 ? "EOF" : "error %s", strerror(errno));
    return NULL;
}

/* A reader of a pipe: its read end closed, the number reused by a new
 * pipe; the old pipe's writer still has a reader, which gets its data. */
static void pipe_reader(void)
{
    int p[2], q[2];
    if (pipe(p) != 0)
        return;
    fd_under_test = p[0];
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    usleep(SETTLE_US);
    close(p[0]);
    if (pipe(q) != 0)
        return;
    printf("pipe: the number is reused: %s\n", q[0] == p[0] || q[1] == p[0] ? "yes" : "no");
    (void)!write(q[1], "NEW", 3);
    ssize_t w = write(p[1], "OLD", 3);
    printf("pipe: write to the old pipe: %zd %s\n", w, w < 0 ? strerror(errno) : "");
    pthread_join(t, NULL);
    printf("pipe: the reader got: %s\n", got);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

/* A socketpair whose sv[0] a new thread running fn(arg) is blocked on by
 * the time this returns (with SO_RCVTIMEO set first, if timeout_us). */
static pthread_t block_on_socket(int sv[2], void *(*fn)(void *), void *arg, long timeout_us)
{
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct timeval tv = {.tv_usec = timeout_us};
    if (timeout_us)
        setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    fd_under_test = sv[0];
    pthread_t t;
    pthread_create(&t, NULL, fn, arg);
    usleep(SETTLE_US);
    return t;
}

/* A reader of a stream socket: its peer sees no hang-up after the close,
 * and what it sends next reaches the reader; then the file is released
 * and the peer sees the hang-up. */
static void socket_reader(void)
{
    int sv[2];
    pthread_t t = block_on_socket(sv, reader, (void *)1, 0);
    close(sv[0]);
    struct pollfd p = {.fd = sv[1], .events = POLLIN | POLLRDHUP};
    int n = poll(&p, 1, 100);
    printf("socket: the peer polls after the close: %d%s\n", n,
           n > 0 && (p.revents & (POLLRDHUP | POLLHUP)) ? " hang-up" : "");
    (void)!send(sv[1], "later", 5, MSG_NOSIGNAL);
    pthread_join(t, NULL);
    printf("socket: the reader got: %s\n", got);
    n = poll(&p, 1, 2000);
    printf("socket: once the read returned, the peer sees: %s\n",
           n > 0 && (p.revents & (POLLRDHUP | POLLHUP)) ? "hang-up" : "nothing");
    close(sv[1]);
}

/* The same when the number is closed by dup2 (replaced by /dev/null), by
 * close_range (through syscall(2): musl 1.2.3 has no wrapper) or by
 * fclose, whose close libc makes inside. */
static void socket_reader_closed_by(const char *how)
{
    int sv[2];
    pthread_t t = block_on_socket(sv, reader, (void *)1, 0);
    int null = open("/dev/null", O_RDONLY);
    if (strcmp(how, "dup2") == 0)
        dup2(null, sv[0]);
    else if (strcmp(how, "fclose") == 0)
        fclose(fdopen(sv[0], "r"));
    else
        syscall(SYS_close_range, sv[0], sv[0], 0);
    (void)!send(sv[1], "later", 5, MSG_NOSIGNAL);
    pthread_join(t, NULL);
    printf("%s: the reader got: %s\n", how, got);
    if (strcmp(how, "dup2") == 0)
        close(sv[0]);
    close(null);
    close(sv[1]);
}

/* A receive with SO_RCVTIMEO ends with its timeout, not at the close. */
static void socket_timeout(void)
{
    int sv[2];
    pthread_t t = block_on_socket(sv, reader, (void *)1, 300000);
    close(sv[0]);
    pthread_join(t, NULL);
    printf("timeout: the reader got: %s\n", got);
    close(sv[1]);
}

static int accepted_fd = -2;

static void *acceptor(void *arg)
{
    accepted_fd = accept(fd_under_test, NULL, NULL);
    return arg;
}

/* A listener closed under a blocked accept still takes the connection
 * that comes next. */
static void listener(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) != 0)
        return;
    fd_under_test = l;
    pthread_t t;
    pthread_create(&t, NULL, acceptor, NULL);
    usleep(SETTLE_US);
    close(l);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    printf("accept: connecting after the close: %s\n", r == 0 ? "ok" : strerror(errno));
    (void)!send(c, "hello", 5, MSG_NOSIGNAL);
    pthread_join(t, NULL);
    char buf[8] = {0};
    ssize_t n = accepted_fd >= 0 ? recv(accepted_fd, buf, 5, MSG_WAITALL) : -1;
    printf("accept: the acceptor got %s, reading \"%s\"\n",
           accepted_fd >= 0 ? "a socket" : "an error", n == 5 ? buf : "");
    if (accepted_fd >= 0)
        close(accepted_fd);
    close(c);
}

static ssize_t written;

static void *writer(void *arg)
{
    static char block[65536];
    written = write(fd_under_test, block, sizeof block);
    return arg;
}

/* A writer blocked on a full socket finishes its whole write once the
 * peer drains it, though its fd was closed; then the peer sees EOF. */
static void socket_writer(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    char fill[4096] = {0};
    long queued = 0;
    ssize_t n;
    while ((n = send(sv[1], fill, sizeof fill, MSG_DONTWAIT)) > 0)
        queued += n;
    fd_under_test = sv[1];
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    usleep(SETTLE_US);
    close(sv[1]);
    long total = 0;
    char buf[8192];
    while ((n = read(sv[0], buf, sizeof buf)) > 0)
        total += n;
    pthread_join(t, NULL);
    printf("writer: wrote %zd; the peer read the fill plus %ld, then %s\n", written, total - queued,
           n == 0 ? "EOF" : strerror(errno));
    close(sv[0]);
}

static void *cancelled_reader(void *arg)
{
    char c;
    (void)!read(fd_under_test, &c, 1);
    return arg;
}

/* A blocked reader cancelled after the close releases the file: its peer
 * sees the hang-up. */
static void cancelled(void)
{
    int sv[2];
    pthread_t t = block_on_socket(sv, cancelled_reader, NULL, 0);
    close(sv[0]);
    pthread_cancel(t);
    void *res;
    pthread_join(t, &res);
    struct pollfd p = {.fd = sv[1], .events = POLLIN | POLLRDHUP};
    int n = poll(&p, 1, 2000);
    printf("cancel: the reader was %s; the peer sees: %s\n",
           res == PTHREAD_CANCELED ? "cancelled" : "not cancelled",
           n > 0 && (p.revents & (POLLRDHUP | POLLHUP)) ? "hang-up" : "nothing");
    close(sv[1]);
}

/* ---- race: closes that fall anywhere among parking readers ------------ */

static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;
static long race_got;

static void *race_reader(void *arg)
{
    char c[3];
    ssize_t n;
    while ((n = read(fd_under_test, c, (size_t)(long)arg)) > 0) {
        pthread_mutex_lock(&race_lock);
        race_got += n;
        pthread_mutex_unlock(&race_lock);
    }
    return NULL;
}

/* Four readers of a socket; the close lands before, among or after their
 * parks, while the peer sends.  Natively each reader blocked at the close
 * keeps the file until its read returns, and the file goes with the last
 * one: then the peer sees the hang-up.  Never more bytes read than sent,
 * never a hang, and the hang-up always comes (no held copy left behind). */
static int race(int rounds)
{
    int bad = 0;
    srand(1);
    for (int r = 0; r < rounds; r++) {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        fd_under_test = sv[0];
        race_got = 0;
        pthread_t t[4];
        for (long i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, race_reader, (void *)(i % 3 + 1));
        usleep((useconds_t)(rand() % 2000));
        close(sv[0]);
        long sent = 0;
        for (int k = 0; k < 20; k++) {
            ssize_t n = send(sv[1], "abcde", 5, MSG_NOSIGNAL);
            sent += n > 0 ? n : 0;
            if (k % 5 == 0)
                usleep((useconds_t)(rand() % 300));
        }
        shutdown(sv[1], SHUT_WR);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        struct pollfd p = {.fd = sv[1], .events = POLLIN | POLLRDHUP};
        int n = poll(&p, 1, 2000);
        bool hangup = n > 0 && (p.revents & (POLLRDHUP | POLLHUP));
        if (race_got > sent || !hangup) {
            printf("round %d: sent %ld, read %ld, hang-up %s\n", r, sent, race_got,
                   hangup ? "yes" : "no");
            bad++;
        }
        close(sv[1]);
    }
    printf("race: %d rounds, %d bad\n", rounds, bad);
    return bad != 0;
}

int main(int argc, char **argv)
{
    alarm(60);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[1], "race") == 0)
        return race(atoi(argv[2]));
    pipe_reader();
    socket_reader();
    socket_reader_closed_by("dup2");
    socket_reader_closed_by("close_range");
    socket_reader_closed_by("fclose");
    socket_timeout();
    listener();
    socket_writer();
    cancelled();
    return 0;
}
