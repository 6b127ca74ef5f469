/* Thread-per-connection echo: N client threads and N server threads move an
 * exact byte total through loopback TCP with every byte checked. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
static int port, N, M = 100;
static atomic_long total;
static void *serve(void *a)
{
    int fd = (int)(long)a;
    char buf[4096];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        if (write(fd, buf, r) != r)
            break;
    }
    close(fd);
    return 0;
}
static void *acceptor(void *a)
{
    int l = (int)(long)a;
    for (int i = 0; i < N; i++) {
        int c = accept(l, 0, 0);
        if (c < 0) {
            perror("accept");
            exit(1);
        }
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, 1);
        pthread_create(&t, &at, serve, (void *)(long)c);
    }
    return 0;
}
static void *client(void *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (connect(fd, (void *)&sa, sizeof sa)) {
        perror("connect");
        exit(1);
    }
    char buf[1000], in[1000];
    long sum = 0;
    for (int i = 0; i < M; i++) {
        memset(buf, (int)(long)a + i, sizeof buf);
        if (write(fd, buf, sizeof buf) != sizeof buf)
            exit(2);
        size_t got = 0;
        while (got < sizeof in) {
            ssize_t r = read(fd, in + got, sizeof in - got);
            if (r <= 0)
                exit(3);
            got += r;
        }
        if (memcmp(buf, in, sizeof in))
            exit(4);
        sum += got;
    }
    close(fd);
    atomic_fetch_add(&total, sum);
    return 0;
}
int main(int argc, char **argv)
{
    N = argc > 1 ? atoi(argv[1]) : 1000;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, 4);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    bind(l, (void *)&sa, sizeof sa);
    listen(l, 4096);
    socklen_t sl = sizeof sa;
    getsockname(l, (void *)&sa, &sl);
    port = ntohs(sa.sin_port);
    pthread_t at;
    pthread_create(&at, 0, acceptor, (void *)(long)l);
    pthread_t *t = malloc(sizeof(pthread_t) * N);
    for (int i = 0; i < N; i++)
        if (pthread_create(&t[i], 0, client, (void *)(long)i)) {
            printf("create fail\n");
            return 1;
        }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], 0);
    pthread_join(at, 0);
    printf("total=%ld\n", (long)total);
    return 0;
}
