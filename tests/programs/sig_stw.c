/* Stop the world as garbage collectors do (Boehm GC, Mono): the collector
 * thread sends a suspend signal to every mutator with pthread_kill; each
 * handler posts a semaphore and waits in sigsuspend until the resume
 * signal has come and the world is running again, then posts once more.
 * The collector checks, while the world is stopped, that no mutator moves.
 *
 * Usage: sig_stw [ROUNDS [THREADS]] (1000 and 8 by default).  Prints the
 * rounds done and whether the world was stopped each time; the elapsed
 * time goes to stderr as "elapsed_us N" for the suite's timing check.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIG_SUSPEND SIGUSR1
#define SIG_RESUME SIGUSR2
#define MAX_THREADS 64

static sem_t ack;
static atomic_int world_stopped, done;
static volatile unsigned long counter[MAX_THREADS];
static sigset_t wait_mask; /* everything but the resume signal */
static __thread int resumed;

static void on_suspend(int sig)
{
    (void)sig;
    int saved = errno;
    resumed = 0;
    sem_post(&ack);
    while (atomic_load(&world_stopped) || !resumed)
        sigsuspend(&wait_mask);
    sem_post(&ack);
    errno = saved;
}

static void on_resume(int sig)
{
    (void)sig;
    resumed = 1;
}

static void *mutator(void *arg)
{
    int i = (int)(long)arg;
    while (!atomic_load(&done))
        counter[i]++;
    return NULL;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    int n = argc > 2 ? atoi(argv[2]) : 8;
    if (n < 1 || n > MAX_THREADS)
        return 2;
    sem_init(&ack, 0, 0);
    sigfillset(&wait_mask);
    sigdelset(&wait_mask, SIG_RESUME);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = on_suspend;
    sigaction(SIG_SUSPEND, &sa, NULL);
    sa.sa_handler = on_resume;
    sigaction(SIG_RESUME, &sa, NULL);

    static pthread_t t[MAX_THREADS];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, mutator, (void *)(long)i);
    int moved = 0;
    uint64_t start = now_us();
    for (int r = 0; r < rounds; r++) {
        atomic_store(&world_stopped, 1);
        for (int i = 0; i < n; i++)
            pthread_kill(t[i], SIG_SUSPEND);
        for (int i = 0; i < n; i++)
            while (sem_wait(&ack) != 0)
                ;
        unsigned long seen[MAX_THREADS];
        for (int i = 0; i < n; i++)
            seen[i] = counter[i];
        for (volatile int spin = 0; spin < 2000; spin++)
            ;
        for (int i = 0; i < n; i++)
            if (counter[i] != seen[i])
                moved++;
        atomic_store(&world_stopped, 0);
        for (int i = 0; i < n; i++)
            pthread_kill(t[i], SIG_RESUME);
        for (int i = 0; i < n; i++)
            while (sem_wait(&ack) != 0)
                ;
    }
    uint64_t elapsed = now_us() - start;
    atomic_store(&done, 1);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("rounds: %d of %d threads\n", rounds, n);
    printf("world stopped every time: %s\n", moved ? "NO" : "yes");
    fprintf(stderr, "elapsed_us %llu\n", (unsigned long long)elapsed);
    return moved != 0;
}
