// earlycalls: a library whose constructor calls interposed functions
// before libfiberize's constructor has run (the loader runs a preloaded
// library's constructor after those of the program's own libraries, as
// libselinux's fopen found out).  Those calls go through the real-symbol
// stubs (syscalls/real.c), which must pass every argument untouched: the
// first one, getnameinfo, has its seventh argument on the stack.  The
// program prints what the constructor saw; natively and fiberized must match.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char early_report[1024];

static void *early_thread(void *arg)
{
    return (char *)arg + 1;
}

__attribute__((constructor)) static void early_calls(void)
{
    size_t n = 0, cap = sizeof early_report;

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "192.0.2.7", &sa.sin_addr);
    char host[64] = "", serv[16] = "";
    int r = getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv,
                        NI_NUMERICHOST | NI_NUMERICSERV);
    n += (size_t)snprintf(early_report + n, cap - n, "getnameinfo %d %s %s\n", r, host, serv);

    char path[] = "/tmp/fz_earlycalls.XXXXXX";
    int tmp = mkstemp(path);
    if (tmp >= 0)
        close(tmp);
    unlink(path);
    umask(022);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0640);
    struct stat st;
    fstat(fd, &st);
    ssize_t w = write(fd, "hello", 5);
    ssize_t pw = pwrite(fd, "HE", 2, 0);
    char buf[8] = "";
    ssize_t rd = pread(fd, buf, sizeof buf - 1, 0);
    n += (size_t)snprintf(early_report + n, cap - n,
                          "open mode %o, write %zd, pwrite %zd, pread %zd %s\n",
                          (unsigned)(st.st_mode & 0777), w, pw, rd, buf);
    close(fd);
    unlink(path);

    pthread_t t;
    void *res = NULL;
    char word[] = "xthread";
    int c = pthread_create(&t, NULL, early_thread, word);
    int j = c ? -1 : pthread_join(t, &res);
    struct timespec nap = {0, 1000000};
    int s = nanosleep(&nap, NULL);
    n += (size_t)snprintf(early_report + n, cap - n, "pthread_create %d join %d %s, nanosleep %d\n",
                          c, j, res ? (char *)res : "-", s);
}
