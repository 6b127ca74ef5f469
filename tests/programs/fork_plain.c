/* A fork child that has not started a thread is a plain process, as
 * natively: no more mappings than its parent had, no epoll instance, its
 * own pid as its tid.  Fiberized, the runtime is rebuilt in the child only
 * at its first thread (preload/init.c); rebuilt at the fork, the child
 * mapped the carrier slots and an idle stack and made an epoll instance
 * before its first instruction (issue 17's waitpid and fork figures).
 * Then its threads run, and a handler the child installed before its first
 * thread (while the runtime was off) still ends the main thread's blocked
 * read with EINTR when another thread signals the process.  Prints the
 * same lines natively and fiberized.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Raw system calls and a static buffer: counting must not map anything. */
static char buf[1 << 20];

static int mappings(void)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int lines = 0;
    long n;
    while ((n = syscall(SYS_read, fd, buf, sizeof buf)) > 0)
        for (long i = 0; i < n; i++)
            lines += buf[i] == '\n';
    syscall(SYS_close, fd);
    return lines;
}

/* epoll instances among the process's fds, hidden ones included: the
 * directory is read with getdents64, below any interposer. */
static int epoll_fds(void)
{
    int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY);
    if (dir < 0)
        return -1;
    int found = 0;
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, 65536)) > 0) {
        for (long off = 0; off < n;) {
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            const char *name = buf + off + 19;
            char link[64];
            long len = syscall(SYS_readlinkat, dir, name, link, sizeof link - 1);
            if (len > 0) {
                link[len] = 0;
                found += strstr(link, "eventpoll") != NULL;
            }
            off += reclen;
        }
    }
    syscall(SYS_close, dir);
    return found;
}

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
    (void)sig;
    handled = 1;
}

static void *signaller(void *arg)
{
    usleep(100000);
    kill(getpid(), SIGUSR1); /* to the process: the main thread takes it */
    return arg;
}

static void *nothing(void *arg)
{
    return arg;
}

static int child(int parent_maps)
{
    int maps = mappings();
    int epolls = epoll_fds();
    char line[256];
    int len = snprintf(line, sizeof line,
                       "child before its first thread: mappings beyond its parent's: %d, "
                       "epoll fds: %d, gettid is getpid: %s\n",
                       maps > parent_maps ? maps - parent_maps : 0, epolls,
                       syscall(SYS_gettid) == getpid() ? "yes" : "no");
    (void)!write(1, line, (size_t)len);
    /* a handler installed while the child has no threads */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: a blocked read ends with EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 2;
    (void)!write(1, "child's first thread ran\n", 25);
    int p[2];
    if (pipe(p) != 0 || pthread_create(&t, NULL, signaller, NULL) != 0)
        return 3;
    char c;
    ssize_t r = read(p[0], &c, 1); /* nobody writes: only the signal ends it */
    int err = errno;
    pthread_join(t, NULL);
    len = snprintf(line, sizeof line, "blocked read after the handler: %s, handler ran: %d\n",
                   r < 0 && err == EINTR ? "EINTR" : "other", (int)handled);
    (void)!write(1, line, (size_t)len);
    return 0;
}

int main(void)
{
    /* the parent has threads: fiberized, its carriers are up */
    pthread_t t;
    pthread_create(&t, NULL, nothing, NULL);
    pthread_join(t, NULL);
    fflush(stdout);
    int parent_maps = mappings();
    pid_t pid = fork();
    if (pid == 0)
        _exit(child(parent_maps));
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return 1;
    printf("child exit status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
