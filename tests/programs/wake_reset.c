/* An error the kernel reports once is reported once, to the program: a
 * blocking send (write, writev) of 50 MB over loopback TCP while the peer
 * reads a little and closes with unread data (a reset).  Natively the
 * send returns the bytes it moved and the next send fails with ECONNRESET
 * (the socket's pending error), the one after with EPIPE.  The same for a
 * blocking recv with MSG_WAITALL whose peer resets after sending part of
 * it: the count, then ECONNRESET, then 0 (end of file).
 * getsockopt(SO_ERROR) in place of the next call reports ECONNRESET and
 * clears it; poll shows it as POLLERR.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "libc_compat.h"

static int listener;

static int connected_pair(int *server)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(listener, (struct sockaddr *)&a, &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, len) != 0)
        exit(2);
    *server = accept(listener, NULL, NULL);
    if (*server < 0)
        exit(2);
    return c;
}

static void reset_close(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static const char *result(ssize_t r, size_t asked)
{
    static char buf[64];
    if (r < 0)
        snprintf(buf, sizeof buf, "-1 %s", strerrorname_np(errno));
    else if (r == 0)
        snprintf(buf, sizeof buf, "0");
    else
        snprintf(buf, sizeof buf, "%s", (size_t)r < asked ? "a partial count" : "everything");
    return buf;
}

/* ---- send: the peer reads a little and closes with data unread ---------- */

static void *slow_peer(void *arg)
{
    int fd = *(int *)arg;
    static char buf[4096];
    usleep(100000);
    if (read(fd, buf, sizeof buf) <= 0)
        exit(2);
    close(fd); /* unread data: the kernel sends a reset */
    return NULL;
}

static void send_case(int round_no)
{
    int server, c = connected_pair(&server);
    pthread_t t;
    pthread_create(&t, NULL, slow_peer, &server);
    size_t n = 50u << 20;
    char *big = calloc(1, n);
    static const char *how[] = {"send", "write", "writev"};
    struct iovec v[2] = {{big, n / 2}, {big + n / 2, n - n / 2}};
    ssize_t r = round_no == 0   ? send(c, big, n, 0)
                : round_no == 1 ? write(c, big, n)
                                : writev(c, v, 2);
    printf("%s of 50 MB to a peer that resets: %s\n", how[round_no], result(r, n));
    pthread_join(t, NULL);
    if (round_no == 2) { /* poll shows the pending error */
        struct pollfd p = {c, POLLOUT, 0};
        int n = poll(&p, 1, 1000);
        printf("poll: %d, POLLERR %s\n", n, p.revents & POLLERR ? "set" : "clear");
    }
    if (round_no == 1) { /* once: SO_ERROR reports the pending error and clears it */
        int err = -1;
        socklen_t len = sizeof err;
        getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len);
        printf("SO_ERROR: %s\n", err ? strerrorname_np(err) : "0");
    }
    r = send(c, big, 100, 0);
    printf("next send: %s\n", result(r, 100));
    r = send(c, big, 100, 0);
    printf("the send after: %s\n", result(r, 100));
    free(big);
    close(c);
}

/* ---- recv MSG_WAITALL: the peer sends part, then resets ------------------ */

static void *partial_sender(void *arg)
{
    int fd = *(int *)arg;
    char buf[1000] = {0};
    if (write(fd, buf, sizeof buf) != sizeof buf)
        exit(2);
    usleep(100000);
    reset_close(fd);
    return NULL;
}

static void recv_case(void)
{
    int server, c = connected_pair(&server);
    pthread_t t;
    pthread_create(&t, NULL, partial_sender, &server);
    static char buf[100000];
    ssize_t r = recv(c, buf, sizeof buf, MSG_WAITALL);
    printf("recv MSG_WAITALL of 100000 from a peer that sends 1000 and resets: %s\n",
           result(r, sizeof buf));
    pthread_join(t, NULL);
    r = recv(c, buf, sizeof buf, 0);
    printf("next recv: %s\n", result(r, sizeof buf));
    r = recv(c, buf, sizeof buf, 0);
    printf("the recv after: %s\n", result(r, sizeof buf));
    close(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 8))
        return 2;
    for (int i = 0; i < 3; i++) {
        send_case(i);
        recv_case();
    }
    return 0;
}
