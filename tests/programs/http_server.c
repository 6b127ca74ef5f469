/* The bundled demo server: classic thread-per-connection HTTP/1.1.
 *
 * An accept loop starts one detached thread per connection; each thread
 * reads requests with blocking read(), answers every GET with the same
 * 1 KiB body (keep-alive unless the client says close) and exits when the
 * client closes.  Nothing here knows about fiberize: it is the kind of
 * legacy server fiberize exists for.
 *
 *   http_server [PORT]    127.0.0.1:PORT (0 or none: any free port)
 * Prints "listening on PORT" once ready; exits 0 on SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_BYTES 1024

static char response[512 + BODY_BYTES];
static size_t response_len;

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

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One request per "\r\n\r\n"; bodies are not expected (GET only). */
static void *serve(void *arg)
{
    int fd = (int)(long)arg;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *end;
        int close_after = 0;
        while ((end = strstr(buf, "\r\n\r\n"))) {
            *end = '\0';
            if (strcasestr(buf, "connection: close"))
                close_after = 1;
            if (write_all(fd, response, response_len) < 0)
                goto out;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, end + 4, have - used + 1);
            have -= used;
        }
        if (close_after || have == sizeof buf - 1)
            break;
    }
out:
    close(fd);
    return NULL;
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

    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((unsigned short)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 4096) ||
        getsockname(l, (struct sockaddr *)&sa, &len)) {
        perror("http_server");
        return 1;
    }
    printf("listening on %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(1000); /* out of fds: wait for connections to close */
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            perror("accept");
            return 1;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(long)c) != 0)
            close(c); /* out of threads: drop the connection, as such servers do */
    }
}
