/* Bulk transfer and fd reuse.
 *
 * 64 MiB go through a loopback TCP connection twice, once in small writes
 * (1..512 bytes) and once in large ones (up to 1 MiB), read back with
 * reads of other sizes; byte counts and checksums must match exactly.
 *
 * Then a thread blocks reading a socket that another thread closes; a new
 * socket takes the same fd number and gets data.  The blocked reader must
 * never see the new socket's data: it keeps waiting on the old socket,
 * whose peer finally writes (io_close_waiting has more such cases).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOTAL (64L << 20)

static int failures;
#define CHECK(c, what)                                                                             \
    do {                                                                                           \
        if (c)                                                                                     \
            printf("ok %s\n", what);                                                               \
        else {                                                                                     \
            printf("FAIL %s\n", what);                                                             \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static unsigned char byte_at(long i)
{
    return (unsigned char)(i * 2654435761u >> 13);
}

struct side {
    int fd;
    size_t max_chunk;
    long bytes;
    unsigned long sum;
};

static void *sender(void *arg)
{
    struct side *s = arg;
    unsigned char *buf = malloc(s->max_chunk);
    long sent = 0;
    unsigned seed = 12345;
    while (sent < TOTAL) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % s->max_chunk;
        if ((long)n > TOTAL - sent)
            n = (size_t)(TOTAL - sent);
        for (size_t i = 0; i < n; i++)
            buf[i] = byte_at(sent + (long)i);
        ssize_t w = write(s->fd, buf, n);
        if (w != (ssize_t)n) { /* a blocking write moves everything */
            fprintf(stderr, "io_transfer: write %zu returned %zd (errno %d)\n", n, w, errno);
            break;
        }
        sent += w;
    }
    shutdown(s->fd, SHUT_WR);
    free(buf);
    s->bytes = sent;
    return NULL;
}

static void receive(struct side *s, size_t read_size)
{
    unsigned char *buf = malloc(read_size);
    long got = 0;
    unsigned long sum = 0;
    int in_order = 1;
    ssize_t r;
    while ((r = read(s->fd, buf, read_size)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] != byte_at(got + i))
                in_order = 0;
            sum = sum * 31 + buf[i];
        }
        got += r;
    }
    free(buf);
    s->bytes = in_order ? got : -got;
    s->sum = sum;
}

static void tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof sa;
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&sa, &len);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    connect(fds[0], (struct sockaddr *)&sa, sizeof sa);
    fds[1] = accept(l, NULL, NULL);
    close(l);
}

static void transfer(size_t max_chunk, size_t read_size, const char *what)
{
    int fds[2];
    tcp_pair(fds);
    struct side tx = {fds[0], max_chunk, 0, 0}, rx = {fds[1], 0, 0, 0};
    pthread_t t;
    pthread_create(&t, NULL, sender, &tx);
    receive(&rx, read_size);
    pthread_join(t, NULL);
    printf("%s: sent %ld, received %ld\n", what, tx.bytes, rx.bytes);
    CHECK(tx.bytes == TOTAL && rx.bytes == TOTAL, what);
    close(fds[0]);
    close(fds[1]);
}

/* ---- a reader whose fd is closed and reused -------------------------- */

static int old_pair[2];
static char reader_got[32];

static void *blocked_reader(void *arg)
{
    char buf[32] = {0};
    ssize_t r = read(old_pair[0], buf, sizeof buf - 1);
    if (r > 0)
        snprintf(reader_got, sizeof reader_got, "%s", buf);
    else
        snprintf(reader_got, sizeof reader_got, r == 0 ? "EOF" : "error");
    return arg;
}

static void close_and_reuse(void)
{
    socketpair(AF_UNIX, SOCK_STREAM, 0, old_pair);
    int old_fd = old_pair[0];
    pthread_t t;
    pthread_create(&t, NULL, blocked_reader, NULL);
    usleep(100000); /* the reader is blocked by now */
    close(old_fd);
    int fresh[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, fresh);
    int reused = fresh[0] == old_fd ? fresh[0] : fresh[1] == old_fd ? fresh[1] : -1;
    CHECK(reused >= 0, "a new socket takes the closed fd number");
    if (reused >= 0)
        (void)!write(reused == fresh[0] ? fresh[1] : fresh[0], "NEW", 3);
    usleep(100000);
    (void)!write(old_pair[1], "OLD", 3); /* the blocked reader wakes with this */
    close(old_pair[1]);
    pthread_join(t, NULL);
    CHECK(strcmp(reader_got, "NEW") != 0, "the blocked reader never sees the new socket's data");
    CHECK(strcmp(reader_got, "OLD") == 0, "the blocked reader gets the old socket's data");
    close(fresh[0]);
    close(fresh[1]);
}

int main(void)
{
    alarm(120);
    signal(SIGPIPE, SIG_IGN);
    transfer(512, 4096, "64 MiB in small writes");
    transfer(1 << 20, 65536, "64 MiB in large writes");
    close_and_reuse();
    printf("%d failures\n", failures);
    return failures != 0;
}
