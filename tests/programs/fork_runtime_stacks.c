/* A fork child must not share the pages of the runtime's own OS threads'
 * stacks with its parent (runtime/osthread.c): shared, every page the
 * parent's carriers and monitor write after a fork is copied, and glibc's
 * child writes into each such thread's descriptor; with 50 threads forking,
 * the monitor's spares made that 44 more page copies per child (75 instead
 * of 31 on a PVM guest).  Prints how many stack-sized mappings are wiped on
 * fork (VmFlags "wf" in smaps: natively 0, fiberized one per carrier
 * started and one for the monitor), then checks that a child on such a
 * parent still runs threads, forks and execs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void *nothing(void *arg)
{
    return arg;
}

/* Mappings of 16 KiB or more whose VmFlags have "wf". */
static int wiped_on_fork(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    unsigned long lo = 0, hi = 0;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2) {
            lo = a, hi = b;
        } else if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " wf") && hi - lo >= 16384) {
            n++;
        }
    }
    fclose(f);
    return n;
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
    printf("stacks wiped on fork: %d\n", wiped_on_fork());
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
