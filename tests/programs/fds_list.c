/* The fds a program sees it has, every way it can ask: readdir of
 * /proc/self/fd, /dev/fd, /proc/<pid>/fd, /proc/thread-self/fd and
 * /proc/self/fdinfo, scandir, the getdents64 system call, and fcntl(F_GETFD) on
 * every number up to the limit.  Natively the runtime's fds are not there,
 * so under fiberize the lists must be the same (both runs inherit the same
 * fds from the caller).  Each listing leaves out the directory's own fd. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static void print_sorted(const char *what, int *fds, int n)
{
    qsort(fds, (size_t)n, sizeof *fds, cmp_int);
    printf("%s:", what);
    for (int i = 0; i < n; i++)
        printf(" %d", fds[i]);
    printf("\n");
}

static void by_readdir(const char *label, const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        printf("%s: cannot open\n", label);
        return;
    }
    int fds[4096], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096)
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
            fds[n++] = atoi(e->d_name);
    closedir(d);
    print_sorted(label, fds, n);
}

static void by_getdents(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY);
    int fds[4096], n = 0;
    char buf[512]; /* small: several calls */
    long got;
    while ((got = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
        for (long at = 0; at < got;) {
            struct dirent64 *e = (struct dirent64 *)(buf + at);
            if (e->d_name[0] != '.' && atoi(e->d_name) != dfd && n < 4096)
                fds[n++] = atoi(e->d_name);
            at += e->d_reclen;
        }
    }
    close(dfd);
    print_sorted("getdents64 /proc/self/fd", fds, n);
}

static void by_scandir(const char *path)
{
    struct dirent **list;
    int n = scandir(path, &list, NULL, alphasort), fds[4096], k = 0;
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.' && k < 4096)
            fds[k++] = atoi(list[i]->d_name);
        free(list[i]);
    }
    if (n >= 0)
        free(list);
    print_sorted("scandir /proc/self/fdinfo", fds, k);
}

static void by_fcntl(void)
{
    long max = sysconf(_SC_OPEN_MAX);
    int fds[4096], n = 0;
    for (long fd = 0; fd < max && n < 4096; fd++)
        if (fcntl((int)fd, F_GETFD) >= 0)
            fds[n++] = (int)fd;
    print_sorted("fcntl(F_GETFD) probe", fds, n);
}

static void *list_from_thread(void *arg)
{
    by_readdir("thread: /proc/thread-self/fd", "/proc/thread-self/fd");
    return arg;
}

static void *wait_for(void *arg)
{
    int status;
    waitpid(*(pid_t *)arg, &status, 0);
    return NULL;
}

int main(int argc, char **argv)
{
    int p[2];
    pipe(p);
    /* a thread waits for a child meanwhile (a pidfd under fiberize) */
    pid_t sleeper = fork();
    if (sleeper == 0) {
        execl("/bin/sleep", "sleep", "0.5", (char *)NULL);
        _exit(127);
    }
    pthread_t waiter;
    pthread_create(&waiter, NULL, wait_for, &sleeper);
    usleep(100000);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)getpid());
    by_readdir("/proc/self/fd", "/proc/self/fd");
    by_readdir("/dev/fd", "/dev/fd");
    by_readdir("/proc/<pid>/fd", path);
    by_readdir("/proc/thread-self/fd", "/proc/thread-self/fd");
    by_readdir("/proc/self/fdinfo", "/proc/self/fdinfo");
    by_getdents("/proc/self/fd");
    by_scandir("/proc/self/fdinfo");
    by_fcntl();
    pthread_t t;
    pthread_create(&t, NULL, list_from_thread, NULL);
    pthread_join(t, NULL);
    pthread_join(waiter, NULL);
    fflush(stdout);
    /* a child that waits for its own child (a pidfd under fiberize) while
     * another thread lists */
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return 0;
    printf("after exec:\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", argv[0], "child", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child status %d\n", WEXITSTATUS(status));
    return 0;
}
