/* poll, select and epoll_wait blocked on an fd another thread closes.
 *
 * Natively a blocked poll or select holds a reference to each file it
 * sleeps on, so close(2) from another thread frees the number but not the
 * file: the close wakes nobody, a pipe's writer still has a reader, a
 * socket's peer sees no hang-up.  The call rescans its numbers when one of
 * its files (the closed one too) has an event, or at its timeout: poll
 * then says POLLNVAL for a number left closed, select (Linux 6.18) reports
 * it ready in each set that asked, and a number some new file took is
 * that file's.  epoll_wait whose epoll fd is closed goes on as if nothing
happened: its instance keeps its interest list, reports an event on it,
or times out.  Once the call returns, the file goes.  Each case prints
 * what the waiter saw and when (before or after a step of main's); the
 * output must be the native one (bats compares).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define SETTLE_US 200000 /* long enough for a thread to block, or not return */

static int watched, other = -1, poll_timeout_ms;
static atomic_int returned;
static char result[128];

static const char *events(short revents, char buf[static 32])
{
    snprintf(buf, 32, "%s%s%s%s", revents & POLLIN ? "IN " : "", revents & POLLNVAL ? "NVAL " : "",
             revents & POLLHUP ? "HUP " : "", revents ? "" : "none");
    return buf;
}

static void *poller(void *arg)
{
    (void)arg;
    struct pollfd p[2] = {{watched, POLLIN, 0}, {other, POLLIN, 0}};
    int n = poll(p, other >= 0 ? 2 : 1, poll_timeout_ms);
    char a[32], b[32];
    if (n < 0)
        snprintf(result, sizeof result, "-1 %s", strerror(errno));
    else if (other >= 0)
        snprintf(result, sizeof result, "%d, watched %s, other %s", n, events(p[0].revents, a),
                 events(p[1].revents, b));
    else
        snprintf(result, sizeof result, "%d, %s", n, events(p[0].revents, a));
    atomic_store(&returned, 1);
    return NULL;
}

static void *selecter(void *arg)
{
    (void)arg;
    fd_set r, e;
    FD_ZERO(&r);
    FD_ZERO(&e);
    FD_SET(watched, &r);
    FD_SET(watched, &e);
    FD_SET(other, &r);
    struct timeval tv = {5, 0};
    int n = select((watched > other ? watched : other) + 1, &r, NULL, &e, &tv);
    if (n < 0)
        snprintf(result, sizeof result, "-1 %s", strerror(errno));
    else
        snprintf(result, sizeof result, "%d, watched in read set %d, in except set %d, other %d", n,
                 FD_ISSET(watched, &r), FD_ISSET(watched, &e), FD_ISSET(other, &r));
    atomic_store(&returned, 1);
    return NULL;
}

#define EPOLL_TAG 7 /* the data the pipe is registered with */

static void *epoller(void *arg)
{
    (void)arg;
    struct epoll_event ev[2];
    int n = epoll_wait(watched, ev, 2, poll_timeout_ms);
    if (n < 0)
        snprintf(result, sizeof result, "-1 %s", strerror(errno));
    else
        snprintf(result, sizeof result, "%d%s", n,
                 n == 1 && ev[0].data.u32 == EPOLL_TAG && (ev[0].events & EPOLLIN)
                     ? ", the pipe readable"
                     : "");
    atomic_store(&returned, 1);
    return NULL;
}

static pthread_t start(void *(*fn)(void *), int fd, int timeout_ms)
{
    watched = fd;
    poll_timeout_ms = timeout_ms;
    atomic_store(&returned, 0);
    pthread_t t;
    pthread_create(&t, NULL, fn, NULL);
    usleep(SETTLE_US);
    return t;
}

static const char *waiting(void)
{
    usleep(SETTLE_US);
    return atomic_load(&returned) ? "returned" : "still waiting";
}

static void finish(const char *name, pthread_t t)
{
    pthread_join(t, NULL);
    printf("%s: got %s\n", name, result);
}

/* Closed, then the old pipe written: poll wakes and says POLLNVAL. */
static void pipe_written(void)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    pthread_t t = start(poller, p[0], 5000);
    close(p[0]);
    printf("poll pipe: after the close: %s\n", waiting());
    ssize_t w = write(p[1], "x", 1);
    printf("poll pipe: write to the old pipe: %zd %s\n", w, w < 0 ? strerror(errno) : "");
    finish("poll pipe", t);
    close(p[1]);
}

/* Closed, nothing happens: poll reports the number at its timeout. */
static void timed_out(void)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    pthread_t t = start(poller, p[0], 4 * SETTLE_US / 1000);
    close(p[0]);
    printf("timeout: after the close: %s\n", waiting());
    finish("timeout", t);
    close(p[1]);
}

/* Closed and the number reused: the old pipe's data wakes poll, which
 * finds the new pipe empty and waits on; the new pipe's data ends it. */
static void number_reused(void)
{
    int p[2], q[2];
    if (pipe(p) != 0)
        return;
    pthread_t t = start(poller, p[0], 5000);
    close(p[0]);
    if (pipe(q) != 0)
        return;
    /* the number taken on purpose: lowest-free allocation is not what is
     * tested (and a signal handler's or a library's open may race it) */
    if (q[0] != p[0] && dup2(q[0], p[0]) == p[0]) {
        close(q[0]);
        q[0] = p[0];
    }
    printf("reused: the new pipe took the number: %s\n", q[0] == p[0] ? "yes" : "no");
    ssize_t w = write(p[1], "x", 1);
    printf("reused: write to the old pipe: %zd; then poll is %s\n", w, waiting());
    w = write(q[1], "y", 1);
    printf("reused: write to the new pipe: %zd\n", w);
    finish("reused", t);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

/* The watched pipe's read end closed, another pipe watched too; then a
 * byte goes to the old pipe or to the other one. */
static void two_pipes(const char *name, void *(*fn)(void *), bool to_old_pipe)
{
    int p[2], q[2];
    if (pipe(p) != 0 || pipe(q) != 0)
        return;
    other = q[0];
    pthread_t t = start(fn, p[0], 5000);
    close(p[0]);
    printf("%s: after the close: %s\n", name, waiting());
    ssize_t w = write(to_old_pipe ? p[1] : q[1], "x", 1);
    printf("%s: write to the %s pipe: %zd %s\n", name, to_old_pipe ? "old" : "other", w,
           w < 0 ? strerror(errno) : "");
    finish(name, t);
    other = -1;
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

/* The epoll fd closed under epoll_wait; then the registered pipe is
 * written, or nothing happens until the timeout. */
static void epoll_closed(const char *name, bool written)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = EPOLL_TAG};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e) != 0)
        return;
    pthread_t t = start(epoller, ep, written ? 5000 : 4 * SETTLE_US / 1000);
    close(ep);
    printf("%s: after the close: %s\n", name, waiting());
    if (written) {
        ssize_t w = write(p[1], "x", 1);
        printf("%s: write to the pipe: %zd\n", name, w);
    }
    finish(name, t);
    close(p[0]);
    close(p[1]);
}

/* A socket: the peer sees no hang-up while poll holds the file. */
static const char *peer_sees(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN)
        return strerror(errno); /* a reset: the closed end had unread data */
    return n == 0 ? "a hang-up" : n < 0 ? "nothing" : "data";
}

static void socket_peer(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return;
    pthread_t t = start(poller, sv[0], 5000);
    close(sv[0]);
    printf("socket: after the close: %s; the peer sees %s\n", waiting(), peer_sees(sv[1]));
    ssize_t w = send(sv[1], "x", 1, MSG_NOSIGNAL);
    printf("socket: the peer sends: %zd %s\n", w, w < 0 ? strerror(errno) : "");
    finish("socket", t);
    printf("socket: once poll returned, the peer sees %s\n", peer_sees(sv[1]));
    close(sv[1]);
}

/* A poller cancelled after the close lets the file go.  Whether the
 * cancellation or the restarted poll's POLLNVAL wins is the libc's own
 * (glibc 2.36: cancelled; 2.41 and musl: POLLNVAL), so only the file is
 * looked at, once the thread is gone. */
static void cancelled(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return;
    pthread_t t = start(poller, sv[0], 5000);
    close(sv[0]);
    usleep(SETTLE_US);
    pthread_cancel(t);
    pthread_join(t, NULL);
    printf("cancel: once the poller is gone, the peer sees %s\n", peer_sees(sv[1]));
    close(sv[1]);
}

/* race N: four pollers with no timeout, the close landing anywhere among
 * them, then the peer sends.  Every poller must return (alarm), each with
 * POLLNVAL, and once all have, the peer must see the file gone: no held
 * copy left behind.  race-epoll N: the same with four epoll_waits whose
 * epoll fd is closed. */
#define RACERS 4

static int race_fd;
static atomic_int race_bad;

static void *race_poller(void *arg)
{
    (void)arg;
    struct pollfd p = {race_fd, POLLIN, 0};
    int n = poll(&p, 1, -1);
    if (n != 1 || p.revents != POLLNVAL)
        atomic_fetch_add(&race_bad, 1);
    return NULL;
}

/* race_fd is an epoll fd watching the socket: a waiter that began before
 * the close reports the socket's data, one that began after it EBADF */
static void *race_epoller(void *arg)
{
    (void)arg;
    struct epoll_event e;
    int n = epoll_wait(race_fd, &e, 1, -1);
    if (n != 1 && !(n < 0 && errno == EBADF))
        atomic_fetch_add(&race_bad, 1);
    return NULL;
}

static int race(int rounds, bool epoll)
{
    alarm(60);
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            return 1;
        race_fd = sv[0];
        struct epoll_event e = {.events = EPOLLIN};
        if (epoll &&
            ((race_fd = epoll_create1(0)) < 0 || epoll_ctl(race_fd, EPOLL_CTL_ADD, sv[0], &e) != 0))
            return 1;
        atomic_store(&race_bad, 0);
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++)
            pthread_create(&t[i], NULL, epoll ? race_epoller : race_poller, NULL);
        usleep((useconds_t)(r * 37 % 300));
        close(race_fd);
        (void)!send(sv[1], "x", 1, MSG_NOSIGNAL);
        for (int i = 0; i < RACERS; i++)
            pthread_join(t[i], NULL);
        if (epoll)
            close(sv[0]); /* the socket itself was not the one closed */
        char c;
        ssize_t n = recv(sv[1], &c, 1, MSG_DONTWAIT);
        bool gone = n == 0 || (n < 0 && errno == ECONNRESET);
        if (!gone || atomic_load(&race_bad)) {
            bad++;
            printf("round %d: %d pollers saw other than POLLNVAL, file %s\n", r,
                   atomic_load(&race_bad), gone ? "gone" : "still open");
        }
        close(sv[1]);
    }
    printf("race: %d rounds, %d bad\n", rounds, bad);
    return bad != 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc > 2 && strcmp(argv[1], "race") == 0)
        return race(atoi(argv[2]), false);
    if (argc > 2 && strcmp(argv[1], "race-epoll") == 0)
        return race(atoi(argv[2]), true);
    pipe_written();
    timed_out();
    number_reused();
    /* an event on the other ends the wait, the closed number reported too */
    two_pipes("two fds", poller, false);
    socket_peer();
    /* select: the number in the read and except sets */
    two_pipes("select", selecter, true);
    epoll_closed("epoll written", true);
    epoll_closed("epoll timeout", false);
    cancelled();
    return 0;
}
