// tls_basic: 500 threads keep their own __thread variables and errno across
// 100 sleeps and yields each.  Proves every thread has its own TLS block,
// initialised from the image, at a fixed address, with its own errno.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 500
#define ROUNDS 100
#define NWORDS 64

// Not static: the compiler must assume usleep and sched_yield may change them,
// so every check really reloads them.
__thread int v;                   // .tbss: starts at 0
__thread int initialised = 12345; // .tdata: starts at its initialiser
__thread long words[NWORDS];
static atomic_long mismatches;

static void fill(int id)
{
    v = id;
    for (int i = 0; i < NWORDS; i++)
        words[i] = (long)id * NWORDS + i;
}

static int intact(int id, int *v_addr, int *errno_addr)
{
    int ok = v == id && &v == v_addr && &errno == errno_addr && errno == 1000 + id;
    for (int i = 0; i < NWORDS; i++)
        ok &= words[i] == (long)id * NWORDS + i;
    return ok;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    long bad = 0;
    if (v != 0 || initialised != 12345 || words[NWORDS - 1] != 0)
        bad++; // a fresh thread sees the initial TLS image
    fill(id);
    int *v_addr = &v, *errno_addr = &errno;
    for (int round = 0; round < ROUNDS; round++) {
        errno = 1000 + id;
        if (round % 2)
            sched_yield();
        else
            usleep(100 + id % 7 * 100);
        bad += !intact(id, v_addr, errno_addr);
    }
    atomic_fetch_add(&mismatches, bad);
    return NULL;
}

int main(void)
{
    pthread_t tids[NTHREADS];
    alarm(60);
    for (int i = 0; i < NTHREADS; i++) {
        int err = pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)(i + 1));
        if (err) {
            fprintf(stderr, "create failed at %d: %s\n", i, strerror(err));
            return 1;
        }
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(tids[i], NULL);
    if (v != 0 || initialised != 12345)
        atomic_fetch_add(&mismatches, 1); // main's own copies were never touched
    printf("%d threads x %d sleeps/yields, TLS and errno mismatches: %ld\n", NTHREADS, ROUNDS,
           atomic_load(&mismatches));
    return atomic_load(&mismatches) ? 1 : 0;
}
