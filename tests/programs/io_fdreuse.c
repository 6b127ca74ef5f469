/* An fd number closed by fclose (libc's internal close) and reused by
 * another kind of fd must behave as the new file: a blocking read on the
 * new eventfd, timerfd or pipe waits for its own events and gets them. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "libc_compat.h"

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

/* A socket used for blocking I/O, then closed through stdio. */
static int used_then_fclosed(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    char b[4];
    (void)!write(sv[1], "hi", 2);
    (void)!read(sv[0], b, 2);
    fclose(fdopen(sv[0], "r"));
    close(sv[1]);
    return sv[0];
}

static int efd;

static void *post_later(void *arg)
{
    usleep(50000);
    uint64_t one = 1;
    (void)!write(efd, &one, sizeof one);
    return arg;
}

int main(void)
{
    alarm(20);
    int old = used_then_fclosed();
    efd = eventfd(0, 0);
    report("eventfd takes the number", efd == old);
    pthread_t t;
    pthread_create(&t, NULL, post_later, NULL);
    uint64_t v = 0;
    report("a blocking eventfd read wakes", read(efd, &v, sizeof v) == 8 && v == 1);
    pthread_join(t, NULL);
    fclose(fdopen(efd, "r"));

    old = used_then_fclosed();
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    report("timerfd takes the number", tfd == old);
    struct itimerspec its = {{0, 0}, {0, 50000000}};
    timerfd_settime(tfd, 0, &its, NULL);
    report("a blocking timerfd read wakes", read(tfd, &v, sizeof v) == 8 && v == 1);
    fclose(fdopen(tfd, "r"));

    old = used_then_fclosed();
    FILE *f = fopen("/dev/null", "r");
    report("fopen takes the number", f && fileno(f) == old);
    char buf[8];
    report("a read of the new file gives its EOF", read(fileno(f), buf, sizeof buf) == 0);
    fclose(f);

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    (void)!write(sv[1], "x", 1);
    (void)!read(sv[0], buf, 1);
    int lowest = sv[0] < sv[1] ? sv[0] : sv[1];
    closefrom(lowest);
    efd = eventfd(0, 0);
    report("after closefrom, eventfd takes the number", efd == lowest);
    pthread_create(&t, NULL, post_later, NULL);
    report("a blocking eventfd read wakes", read(efd, &v, sizeof v) == 8 && v == 1);
    pthread_join(t, NULL);
    return failures != 0;
}
