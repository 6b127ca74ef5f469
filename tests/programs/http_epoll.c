/* The limit the demo server is measured against: one thread, one epoll
 * loop, non-blocking sockets, the same bytes as http_server.c.
 *
 *   http_epoll [PORT]     prints "listening on PORT"; SIGTERM exits 0
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_BYTES 1024
#define MAX_EVENTS 256

static char response[512 + BODY_BYTES];
static size_t response_len;

struct conn {
    int fd;
    size_t have;
    char buf[4096];
};

static void build_response(void)
{
    char body[BODY_BYTES];
    for (int i = 0; i < BODY_BYTES; i++)
        body[i] = "fiberize demo body\n"[i % 19];
    int head = snprintf(response, sizeof response,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        "Content-Length: %d\r\nConnection: keep-alive\r\n\r\n",
                        BODY_BYTES);
    memcpy(response + head, body, BODY_BYTES);
    response_len = (size_t)head + BODY_BYTES;
}

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Read what is there; answer every complete request.  Responses are small
 * enough to fit the socket buffer of a well-behaved client. */
static void on_readable(int ep, struct conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - 1 - c->have);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            drop(ep, c);
            return;
        }
        c->have += (size_t)r;
        c->buf[c->have] = '\0';
        char *end;
        while ((end = strstr(c->buf, "\r\n\r\n"))) {
            if (write(c->fd, response, response_len) != (ssize_t)response_len) {
                drop(ep, c);
                return;
            }
            size_t used = (size_t)(end + 4 - c->buf);
            memmove(c->buf, end + 4, c->have - used + 1);
            c->have -= used;
        }
        if (c->have == sizeof c->buf - 1) {
            drop(ep, c);
            return;
        }
    }
}

static void on_stop(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    build_response();
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 4096) ||
        getsockname(l, (struct sockaddr *)&sa, &len)) {
        perror("http_epoll");
        return 1;
    }
    printf("listening on %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c) {
                on_readable(ep, c);
                continue;
            }
            int fd;
            while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = calloc(1, sizeof *c);
                c->fd = fd;
                struct epoll_event cev = {.events = EPOLLIN | EPOLLET, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                on_readable(ep, c);
            }
        }
    }
}
