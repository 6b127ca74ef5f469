/* Thread-per-connection echo with N connections open at once.
 *
 * A server process (accept loop, one thread per connection, blocking
 * read/write) and a client process (one thread per connection) talk over
 * loopback TCP.  Every client connects, then waits until all N are
 * connected, so N connections (2N sockets, 2N threads) are live at the
 * same moment; then each sends ROUNDS messages of varying sizes, reads the
 * echo back whole and checks it.  Both sides print exact byte totals and
 * checksums.  The server is this program exec'ed again (a fork child
 * would not be a new fiberized process).  Usage: echo_stress [N]
 * (default 1000).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 20
#define MAX_MSG 3000

static int nconn, port;
static atomic_long server_bytes, client_bytes;
static atomic_ulong server_sum, client_sum;
static pthread_barrier_t all_connected;

static void die(const char *what)
{
    fprintf(stderr, "echo_stress: %s: %s\n", what, strerror(errno));
    exit(1);
}

static unsigned long checksum(const unsigned char *p, size_t n)
{
    unsigned long s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 131 + p[i];
    return s;
}

/* ---- server process -------------------------------------------------- */

static void *serve(void *arg)
{
    int fd = (int)(long)arg;
    unsigned char buf[4096];
    ssize_t r;
    long bytes = 0;
    unsigned long sum = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        bytes += r;
        sum += checksum(buf, (size_t)r);
        if (write(fd, buf, (size_t)r) != r)
            die("server write");
    }
    if (r < 0)
        die("server read");
    close(fd);
    atomic_fetch_add(&server_bytes, bytes);
    atomic_fetch_add(&server_sum, sum);
    return NULL;
}

static void run_server(int listener)
{
    pthread_t *threads = malloc(sizeof(pthread_t) * (size_t)nconn);
    for (int i = 0; i < nconn; i++) {
        int c = accept(listener, NULL, NULL);
        if (c < 0)
            die("accept");
        if (pthread_create(&threads[i], NULL, serve, (void *)(long)c) != 0)
            die("server pthread_create");
    }
    for (int i = 0; i < nconn; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    printf("server: %d connections, %ld bytes echoed, checksum %lu\n", nconn,
           atomic_load(&server_bytes), atomic_load(&server_sum));
    exit(0);
}

/* ---- client process -------------------------------------------------- */

static void read_all(int fd, unsigned char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            die(r == 0 ? "client read: early EOF" : "client read");
        p += r;
        n -= (size_t)r;
    }
}

static void *client(void *arg)
{
    long id = (long)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect");
    pthread_barrier_wait(&all_connected);
    unsigned char out[MAX_MSG], in[MAX_MSG];
    long bytes = 0;
    unsigned long sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        size_t len = 1 + (size_t)((id * 7919 + i * 104729) % MAX_MSG);
        for (size_t k = 0; k < len; k++)
            out[k] = (unsigned char)(id + i * 31 + k);
        if (write(fd, out, len) != (ssize_t)len)
            die("client write");
        read_all(fd, in, len);
        if (memcmp(out, in, len) != 0) {
            fprintf(stderr, "echo_stress: connection %ld round %d: echo differs\n", id, i);
            exit(1);
        }
        bytes += (long)len;
        sum += checksum(in, len);
    }
    close(fd);
    atomic_fetch_add(&client_bytes, bytes);
    atomic_fetch_add(&client_sum, sum);
    return NULL;
}

static void run_clients(void)
{
    pthread_t *threads = malloc(sizeof(pthread_t) * (size_t)nconn);
    pthread_barrier_init(&all_connected, NULL, (unsigned)nconn);
    for (long i = 0; i < nconn; i++)
        if (pthread_create(&threads[i], NULL, client, (void *)i) != 0)
            die("client pthread_create");
    for (int i = 0; i < nconn; i++)
        pthread_join(threads[i], NULL);
    free(threads);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--server") == 0) {
        nconn = atoi(argv[3]);
        run_server(atoi(argv[2]));
    }
    nconn = argc > 1 ? atoi(argv[1]) : 1000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)nconn + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)nconn + 64) {
            fprintf(stderr, "echo_stress: need %d fds, the limit is %lu\n", nconn + 64,
                    (unsigned long)rl.rlim_cur);
            return 77;
        }
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(listener, (struct sockaddr *)&sa, sizeof sa) || listen(listener, 4096))
        die("listen");
    socklen_t len = sizeof sa;
    getsockname(listener, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
    fflush(stdout);
    pid_t server = fork();
    if (server < 0)
        die("fork");
    if (server == 0) {
        char fd_arg[16], n_arg[16];
        snprintf(fd_arg, sizeof fd_arg, "%d", listener);
        snprintf(n_arg, sizeof n_arg, "%d", nconn);
        execl("/proc/self/exe", argv[0], "--server", fd_arg, n_arg, (char *)NULL);
        die("exec");
    }
    close(listener);
    run_clients();
    int status;
    if (waitpid(server, &status, 0) != server || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "echo_stress: server process failed (status %#x)\n", status);
        return 1;
    }
    printf("clients: %d connections open at once, %ld bytes, checksum %lu\n", nconn,
           atomic_load(&client_bytes), atomic_load(&client_sum));
    return 0;
}
