// tls_switch: two threads take turns through sched_yield -- each waits for
// its turn on a shared counter, yielding, then passes the turn -- 1,000,000
// turns in all, and reports ns per turn.  Natively on two CPUs this is the
// cross-CPU hand-off of the counter's cache line plus a sched_yield system
// call; under fiberize with one carrier each turn is one fiber switch, which
// includes loading the next fiber's thread pointer (arch_prctl or wrfsbase),
// since the two threads have different TLS.  A second metric does the same
// with one thread alone (a yield that finds nobody else to run).  With two
// carriers the two threads spin on different OS threads, as natively, and
// the figure depends on the OS giving both a CPU: a fiber's sched_yield with
// nothing else runnable does not enter the kernel, so on a loaded machine a
// carrier may spin out its time slice while its partner waits for a CPU.
// Prints `metric<TAB>value<TAB>unit` lines.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define TURNS 1000000
#define ALONE 1000000

static atomic_long turn;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *player(void *arg)
{
    long me = (long)arg;
    for (;;) {
        long t = atomic_load(&turn);
        if (t >= TURNS)
            return NULL;
        if (t % 2 == me)
            atomic_store(&turn, t + 1);
        sched_yield();
    }
}

int main(void)
{
    pthread_t a, b;
    double start = now();
    pthread_create(&a, NULL, player, (void *)0L);
    pthread_create(&b, NULL, player, (void *)1L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("yield_pair\t%.1f\tns\n", (now() - start) * 1e9 / TURNS);
    start = now();
    for (int i = 0; i < ALONE; i++)
        sched_yield();
    printf("yield_alone\t%.1f\tns\n", (now() - start) * 1e9 / ALONE);
    return 0;
}
