/* A thread stuck where no interposer sees it must not stall the others.
 *
 * One thread blocks in a read of a pipe nobody writes to for 2 s, made
 * through syscall(2), which fiberize passes through unparked (stdio's
 * reads used to be the example; they park now), another
 * computes for 2 s without a single call; meanwhile 1,000 threads finish
 * ten 20 ms sleeps each and two threads ping-pong over pipes.  Natively
 * every thread has its own kernel thread; under fiberize a carrier stuck
 * with the first two must hand its queue over.  The worst lateness of a
 * sleep and the ping-pong rate must stay within generous bounds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLEEPERS 1000
#define NAPS 10
#define NAP_MS 20
#define STUCK_MS 2000

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int silent[2];
static char got_line[64];

static void *reader(void *arg)
{
    if (syscall(SYS_read, silent[0], got_line, sizeof got_line - 1) <= 0)
        strcpy(got_line, "nothing\n");
    return arg;
}

static atomic_int spin_done;

static void *spinner(void *arg)
{
    double end = now_ms() + STUCK_MS;
    volatile unsigned long x = 0;
    while (now_ms() < end)
        x++;
    atomic_store(&spin_done, 1);
    return arg;
}

static _Atomic long worst_us;

static void *sleeper(void *arg)
{
    for (int i = 0; i < NAPS; i++) {
        double t0 = now_ms();
        usleep(NAP_MS * 1000);
        long late = (long)((now_ms() - t0 - NAP_MS) * 1000);
        long seen = atomic_load(&worst_us);
        while (late > seen && !atomic_compare_exchange_weak(&worst_us, &seen, late))
            ;
    }
    return arg;
}

static int ping[2], pong[2];
static atomic_int stop_pingpong;

static void *ponger(void *arg)
{
    char c;
    while (read(ping[0], &c, 1) == 1 && c == 'p')
        if (write(pong[1], "q", 1) != 1)
            break;
    return arg;
}

static void *pinger(void *arg)
{
    long *rounds = arg;
    char c;
    while (!atomic_load(&stop_pingpong)) {
        if (write(ping[1], "p", 1) != 1 || read(pong[0], &c, 1) != 1)
            break;
        (*rounds)++;
    }
    (void)!write(ping[1], "x", 1);
    return NULL;
}

int main(void)
{
    alarm(60);
    if (pipe(silent) || pipe(ping) || pipe(pong))
        return 2;
    pthread_t rd, sp, pi, po, ts[SLEEPERS];
    long rounds = 0;
    pthread_create(&rd, NULL, reader, NULL);
    pthread_create(&sp, NULL, spinner, NULL);
    usleep(50000); /* both are stuck by now */
    double t0 = now_ms();
    pthread_create(&po, NULL, ponger, NULL);
    pthread_create(&pi, NULL, pinger, &rounds);
    for (int i = 0; i < SLEEPERS; i++)
        if (pthread_create(&ts[i], NULL, sleeper, NULL) != 0)
            return 2;
    for (int i = 0; i < SLEEPERS; i++)
        pthread_join(ts[i], NULL);
    double sleepers_ms = now_ms() - t0;
    atomic_store(&stop_pingpong, 1);
    pthread_join(pi, NULL);
    pthread_join(po, NULL);
    report("1,000 sleepers finish while two threads are stuck", sleepers_ms < 1500);
    report("worst sleep lateness under 250 ms", atomic_load(&worst_us) < 250000);
    report("ping-pong kept going (over 100 round trips)", rounds > 100);
    report("the spinner was still spinning meanwhile", !atomic_load(&spin_done));
    (void)!write(silent[1], "late line\n", 10);
    pthread_join(rd, NULL);
    pthread_join(sp, NULL);
    report("the stuck reader got its line", strcmp(got_line, "late line\n") == 0);
    if (failures)
        fprintf(stderr, "sleepers %.0f ms, worst lateness %ld us, %ld round trips\n", sleepers_ms,
                atomic_load(&worst_us), rounds);
    return failures != 0;
}
