/* A spare carrier whose OS thread cannot start (out of address space) must
 * be started again later, not counted as running.  A reader holds the only
 * carrier in a raw read(2) that no interposer sees, so the main thread can
 * run only on a spare; RLIMIT_AS is cut so the monitor's first attempts to
 * start one fail, and a helper process lifts the limit 300 ms later.  The
 * monitor marked such a slot as a retired spare and "woke" it next time:
 * no thread ran, the spare was counted running, none was started again,
 * and the program hung.  Natively the reader blocks only its own thread.
 * Prints the same lines natively and fiberized (run it on one carrier).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2];

/* read(2) without libc: no interposer parks the fiber. */
static long raw_read(int fd, void *buf, size_t n)
{
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "0"((long)SYS_read), "D"((long)fd), "S"(buf), "d"(n)
                     : "rcx", "r11", "memory");
    return r;
}

static void *reader(void *arg)
{
    char c = 0;
    long n = raw_read(pipefd[0], &c, 1);
    printf("reader: %ld byte, '%c'\n", n, c);
    return arg;
}

/* The process's address space now (statm's first field, in pages). */
static long vm_size_bytes(void)
{
    long pages = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1)
            pages = -1;
        fclose(f);
    }
    return pages * sysconf(_SC_PAGESIZE);
}

int main(void)
{
    struct rlimit old;
    if (pipe(pipefd) != 0 || getrlimit(RLIMIT_AS, &old) != 0)
        return 1;
    pid_t parent = getpid();
    pid_t helper = fork();
    if (helper < 0)
        return 1;
    if (helper == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
        _exit(prlimit(parent, RLIMIT_AS, &old, NULL) == 0 ? 0 : 1);
    }
    pthread_t t;
    if (pthread_create(&t, NULL, reader, NULL) != 0)
        return 1;
    struct rlimit tight = {(rlim_t)vm_size_bytes() + (2 << 20), old.rlim_max};
    if (setrlimit(RLIMIT_AS, &tight) != 0)
        return 1;
    usleep(1000); /* the reader takes the carrier */
    if (write(pipefd[1], "x", 1) != 1)
        return 1;
    pthread_join(t, NULL);
    int status;
    waitpid(helper, &status, 0);
    printf("helper: exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
