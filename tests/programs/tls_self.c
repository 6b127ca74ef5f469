// tls_self [N]: pthread_self() is unique among live threads and stable for a
// thread's life, as is the address of its __thread variables, while the
// thread sleeps and yields 200 times (under fiberize with 2 carriers it
// migrates between them).  Each thread also checks that pthread_self() is
// the id its creator got from pthread_create, and that pthread_equal agrees.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ROUNDS 200

__thread int tls_var;
static pthread_t *created;   // what pthread_create returned, per thread
static pthread_t *seen_self; // what each thread saw, for the uniqueness check
static atomic_int started, released;
static atomic_long unstable_self, unstable_addr, not_creator_id, not_equal;

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_t self = pthread_self();
    int *addr = &tls_var;
    tls_var = id;
    seen_self[id] = self;
    atomic_fetch_add(&started, 1);
    // Stay alive until every thread has recorded its id.
    while (!atomic_load(&released))
        usleep(500);
    // The creator stored the id before releasing us.
    if (!pthread_equal(created[id], self))
        atomic_fetch_add(&not_creator_id, 1);
    for (int r = 0; r < ROUNDS; r++) {
        if (r % 3 == 0)
            usleep(50 + (id + r) % 4 * 50);
        else
            sched_yield();
        pthread_t now = pthread_self();
        if (now != self)
            atomic_fetch_add(&unstable_self, 1);
        if (!pthread_equal(now, self))
            atomic_fetch_add(&not_equal, 1);
        if (&tls_var != addr || tls_var != id)
            atomic_fetch_add(&unstable_addr, 1);
    }
    return NULL;
}

static int cmp_thread(const void *a, const void *b)
{
    pthread_t x = *(const pthread_t *)a, y = *(const pthread_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    created = calloc(n + 1, sizeof *created);
    seen_self = calloc(n + 1, sizeof *seen_self);
    alarm(60);
    for (int i = 0; i < n; i++)
        if (pthread_create(&created[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "create %d failed\n", i);
            return 1;
        }
    while (atomic_load(&started) < n)
        usleep(1000);
    // All alive now: their ids (and main's) must all differ.
    seen_self[n] = pthread_self();
    qsort(seen_self, n + 1, sizeof *seen_self, cmp_thread);
    long dups = 0;
    for (int i = 1; i <= n; i++)
        dups += seen_self[i] == seen_self[i - 1];
    atomic_store(&released, 1);
    for (int i = 0; i < n; i++)
        pthread_join(created[i], NULL);
    printf("%d threads x %d sleeps/yields\n", n, ROUNDS);
    printf("duplicate ids %ld, not the creator's id %ld, pthread_self changed %ld, "
           "pthread_equal false %ld, TLS moved %ld\n",
           dups, atomic_load(&not_creator_id), atomic_load(&unstable_self), atomic_load(&not_equal),
           atomic_load(&unstable_addr));
    return dups || atomic_load(&not_creator_id) || atomic_load(&unstable_self) ||
           atomic_load(&not_equal) || atomic_load(&unstable_addr);
}
