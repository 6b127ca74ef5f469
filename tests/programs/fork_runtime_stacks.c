/* A fork child must not share the pages of the runtime's own OS threads'
 * stacks with its parent (runtime/osthread.c): shared, every page the
 * parent's carriers and monitor write after a fork is copied, and glibc's
 * child writes into each such thread's descriptor; with 50 threads forking,
 * the monitor's spares made that 44 more page copies per child (75 instead
 * of 31 on a PVM guest).  Prints how many stack-sized mappings are wiped on
 * fork (VmFlags "wf" in smaps: natively 0, fiberized one per carrier
 * started, one for the monitor and carrier 0's idle stack), and how many
 * runtime threads were found asleep with their stack pointer on a page a
 * fork child shares (0: their frames are in the wiped part, so the parent
 * does not copy back the pages they write after each fork), then checks
 * that a child on such a parent still runs threads, forks and execs.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *nothing(void *arg)
{
    return arg;
}

/* One pass over smaps: how many mappings of 16 KiB or more have "wf" in
 * their VmFlags, and (when in_wiped is given) whether addr lies in a
 * mapping that has it.  -1 if smaps cannot be read. */
static int scan_wiped(unsigned long addr, int *in_wiped)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    unsigned long lo = 0, hi = 0;
    int n = 0;
    if (in_wiped)
        *in_wiped = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
            lo = a, hi = b;
        } else if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " wf")) {
            n += hi - lo >= 16384;
            if (in_wiped && lo <= addr && addr < hi)
                *in_wiped = 1;
        }
    }
    fclose(f);
    return n;
}

/* System calls fiberize does not see: through its interposers, a call that
 * may block wakes the monitor to watch the carrier, and it would be found
 * awake at every look. */
static long raw3(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return r;
}

static bool asleep_in(long nr)
{
    return nr == SYS_epoll_wait || nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2 ||
           nr == SYS_futex || nr == SYS_nanosleep || nr == SYS_clock_nanosleep;
}

/* Threads of this process asleep in epoll_wait, futex or a sleep (idle
 * carriers and the monitor: the program itself starts none that stays)
 * whose stack pointer is outside wiped pages: their frames are written at
 * each wake-up, and a parent's write to a page its fork child shares
 * copies the page. */
static int sleepers_outside_wiped(int *sleepers)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int outside = 0;
    *sleepers = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], line[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/syscall", e->d_name);
        long fd = raw3(SYS_openat, AT_FDCWD, (long)path, O_RDONLY);
        long n = fd < 0 ? -1 : raw3(SYS_read, fd, (long)line, sizeof line - 1);
        if (fd >= 0)
            raw3(SYS_close, fd, 0, 0);
        if (n <= 0)
            continue;
        line[n] = 0;
        /* "nr arg1 .. arg6 sp pc" while the thread is in a system call */
        long nr;
        unsigned long f[8];
        if (sscanf(line, "%ld %lx %lx %lx %lx %lx %lx %lx %lx", &nr, &f[0], &f[1], &f[2], &f[3],
                   &f[4], &f[5], &f[6], &f[7]) != 9)
            continue;
        if (!asleep_in(nr))
            continue;
        ++*sleepers;
        int wiped;
        if (scan_wiped(f[6], &wiped) < 0 || !wiped)
            outside++;
    }
    closedir(d);
    return outside;
}

static int child_work(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 2;
    pid_t g = fork();
    if (g < 0)
        return 3;
    if (g == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(g, &status, 0) != g || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 4;
    return 0;
}

int main(void)
{
    void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED || madvise(probe, 4096, MADV_WIPEONFORK) != 0) {
        printf("kernel: no MADV_WIPEONFORK\n");
        return 0;
    }
    munmap(probe, 4096);
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 1;
    printf("stacks wiped on fork: %d\n", scan_wiped(0, NULL));
    /* Looks until three sleepers were seen.  A thread woken as this
     * fiber's timer ends (the monitor, which watches a carrier that
     * resumes) is given 5 ms of computing to fall asleep again. */
    int seen = 0, outside = 0;
    for (int i = 0; i < 100 && seen < 3; i++) {
        usleep(20 * 1000);
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do
            clock_gettime(CLOCK_MONOTONIC, &t);
        while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 5000000L);
        int sleepers;
        outside += sleepers_outside_wiped(&sleepers);
        seen += sleepers;
    }
    printf("runtime threads seen asleep: %d, on pages a fork child shares: %d\n", seen, outside);
    fflush(stdout);
    for (int i = 0; i < 3; i++) {
        pid_t c = fork();
        if (c < 0)
            return 1;
        if (c == 0)
            _exit(child_work());
        int status;
        if (waitpid(c, &status, 0) != c || !WIFEXITED(status)) {
            printf("child %d: killed by signal %d\n", i,
                   WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            return 1;
        }
        printf("child %d: exit %d\n", i, WEXITSTATUS(status));
    }
    return 0;
}
