/* Barriers: N threads over R rounds, exactly one PTHREAD_BARRIER_SERIAL_THREAD
 * per round and nobody leaves a round before everyone arrived; count 0 is
 * EINVAL; a destroyed barrier can be initialised again.  Spinlocks: an
 * exact counter across 16 threads, with holders that yield inside the
 * critical section (under fiberize the spinners must let them run).
 *
 * usage: sync_barrier barrier [THREADS [ROUNDS]] | spin [THREADS [ITERS]]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg))
        exit(2);
    return t;
}

/* ---- barrier ----------------------------------------------------------- */

static pthread_barrier_t barrier;
static int threads = 1000, rounds = 100;
static atomic_int *arrived, *serials;
static atomic_int early_leavers;

static void *round_runner(void *arg)
{
    (void)arg;
    for (int r = 0; r < rounds; r++) {
        atomic_fetch_add(&arrived[r], 1);
        int ret = pthread_barrier_wait(&barrier);
        if (ret == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&serials[r], 1);
        else if (ret != 0)
            exit(3);
        if (atomic_load(&arrived[r]) != threads)
            atomic_fetch_add(&early_leavers, 1);
    }
    return NULL;
}

static void barrier_test(void)
{
    pthread_barrier_t b;
    printf("init count 0: %s\n", pthread_barrier_init(&b, NULL, 0) == EINVAL ? "EINVAL" : "WRONG");
    pthread_barrier_init(&b, NULL, 1);
    printf("count 1 wait: %s\n",
           pthread_barrier_wait(&b) == PTHREAD_BARRIER_SERIAL_THREAD ? "serial" : "WRONG");
    pthread_barrier_destroy(&b);

    arrived = calloc(rounds, sizeof *arrived);
    serials = calloc(rounds, sizeof *serials);
    pthread_t *t = calloc(threads, sizeof *t);
    for (int pass = 0; pass < 2; pass++) { /* the second pass reuses destroyed storage */
        memset(arrived, 0, rounds * sizeof *arrived);
        memset(serials, 0, rounds * sizeof *serials);
        if (pthread_barrier_init(&barrier, NULL, threads))
            exit(4);
        for (int i = 0; i < threads; i++)
            t[i] = spawn(round_runner, NULL);
        for (int i = 0; i < threads; i++)
            pthread_join(t[i], NULL);
        int exact = 0;
        for (int r = 0; r < rounds; r++)
            exact += serials[r] == 1;
        printf("pass %d: %d threads, %d rounds, %d rounds with exactly one serial thread, "
               "%d early leavers\n",
               pass, threads, rounds, exact, atomic_load(&early_leavers));
        printf("destroy: %d\n", pthread_barrier_destroy(&barrier));
    }
    free(t);
    free(serials);
    free(arrived);
}

/* ---- spinlock ---------------------------------------------------------- */

static pthread_spinlock_t spin;
static long spin_counter;
static int spin_iters = 20000;

static void *spin_adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < spin_iters; i++) {
        pthread_spin_lock(&spin);
        long v = spin_counter;
        if (i % 1000 == 0)
            sched_yield(); /* the holder gives up the CPU while holding */
        spin_counter = v + 1;
        pthread_spin_unlock(&spin);
    }
    return NULL;
}

static void spin_test(void)
{
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    printf("trylock free: %d\n", pthread_spin_trylock(&spin));
    printf("trylock held: %s\n", pthread_spin_trylock(&spin) == EBUSY ? "EBUSY" : "WRONG");
    pthread_spin_unlock(&spin);
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        t[i] = spawn(spin_adder, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    printf("spin counter %ld (want %ld)\n", spin_counter, (long)threads * spin_iters);
    printf("destroy: %d\n", pthread_spin_destroy(&spin));
}

int main(int argc, char **argv)
{
    alarm(100);
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "barrier")) {
        if (argc > 2)
            threads = atoi(argv[2]);
        if (argc > 3)
            rounds = atoi(argv[3]);
        barrier_test();
    } else if (!strcmp(what, "spin")) {
        threads = argc > 2 ? atoi(argv[2]) : 16;
        if (argc > 3)
            spin_iters = atoi(argv[3]);
        if (threads > 64)
            threads = 64;
        spin_test();
    } else {
        fprintf(stderr,
                "usage: sync_barrier barrier [THREADS [ROUNDS]] | spin [THREADS [ITERS]]\n");
        return 2;
    }
    return 0;
}
