/* A token bounced N times between two threads through pipes and through
 * socketpairs: every hand-off is a blocking read woken by the peer's write. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int there[2], back[2], rounds;

static void *peer(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        char c;
        if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
            exit(2);
    }
    return NULL;
}

static long bounce(void)
{
    pthread_t t;
    pthread_create(&t, NULL, peer, NULL);
    long sum = 0;
    for (int i = 0; i < rounds; i++) {
        char c = (char)i;
        if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
            exit(3);
        sum += (unsigned char)c;
    }
    pthread_join(t, NULL);
    return sum;
}

int main(int argc, char **argv)
{
    alarm(120);
    rounds = argc > 1 ? atoi(argv[1]) : 20000;
    pipe(there);
    pipe(back);
    printf("pipes: %ld\n", bounce());
    socketpair(AF_UNIX, SOCK_STREAM, 0, there);
    socketpair(AF_UNIX, SOCK_STREAM, 0, back);
    printf("sockets: %ld\n", bounce());
    return 0;
}
