// spawn_join: the cost of creating and joining one thread that does nothing,
// one at a time (us per create+join pair), and, in the same run, the cost of
// one arch_prctl(ARCH_SET_FS) system call -- what a fiber switch pays for its
// thread-pointer write where the CPU or kernel offers no wrfsbase.  The
// thread pointer is set to the value it already has, so nothing changes.
// Prints `metric<TAB>value<TAB>unit` lines; runs in a few seconds.
#include <asm/prctl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MIN_SECONDS 1.0
#define MAX_PAIRS 200000
#define FS_CALLS 20000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *empty(void *arg)
{
    return arg;
}

// Pairs in batches of 1000 until MIN_SECONDS have passed (or MAX_PAIRS).
static double us_per_spawn_join(void)
{
    long pairs = 0;
    double start = now(), elapsed = 0;
    while (elapsed < MIN_SECONDS && pairs < MAX_PAIRS) {
        for (int i = 0; i < 1000; i++) {
            pthread_t t;
            if (pthread_create(&t, NULL, empty, NULL) != 0 || pthread_join(t, NULL) != 0) {
                perror("spawn_join");
                return -1;
            }
        }
        pairs += 1000;
        elapsed = now() - start;
    }
    return elapsed * 1e6 / pairs;
}

static double ns_per_set_fs(void)
{
    unsigned long fs;
    if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) != 0)
        return -1;
    double start = now();
    for (int i = 0; i < FS_CALLS; i++)
        syscall(SYS_arch_prctl, ARCH_SET_FS, fs);
    return (now() - start) * 1e9 / FS_CALLS;
}

int main(void)
{
    for (int i = 0; i < 200; i++) { // warm up: stacks, caches, carriers
        pthread_t t;
        pthread_create(&t, NULL, empty, NULL);
        pthread_join(t, NULL);
    }
    printf("spawn_join\t%.3f\tus\n", us_per_spawn_join());
    printf("arch_prctl_set_fs\t%.0f\tns\n", ns_per_set_fs());
    return 0;
}
