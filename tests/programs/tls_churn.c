// tls_churn [N] [MAX_GROWTH_MB]: N short-lived threads (default 1,000,000),
// at most 200 alive at once, each touching __thread data, two pthread keys
// with a destructor (one past the first 32, whose values glibc keeps in a
// block it mallocs per thread), malloc, and glibc's per-thread buffers (strsignal of an
// unknown signal, a failed dlsym's dlerror state, getrandom's vDSO state in
// glibc 2.41+).  Whatever a thread's exit
// must release (key values, the strsignal buffer, dlerror state, malloc's
// per-thread cache) must not pile up: resident memory after N threads may
// exceed that after N/10 by at most MAX_GROWTH_MB (default 20).  The figures
// go to stderr; stdout is the same on every correct run.
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define BATCH 200
#define NWORDS 128

__thread long words[NWORDS];
__thread int started_with = 77;
static pthread_key_t key, high_key;
static atomic_long key_dtors, not_pristine;

static void free_value(void *p)
{
    atomic_fetch_add(&key_dtors, 1);
    free(p);
}

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    if (started_with != 77 || words[0] != 0 || words[NWORDS - 1] != 0)
        atomic_fetch_add(&not_pristine, 1);
    started_with = 0;
    for (int i = 0; i < NWORDS; i++)
        words[i] = id + i;
    pthread_setspecific(key, malloc(64 + id % 64));
    pthread_setspecific(high_key, malloc(16));
    void *p = malloc(100 + id % 900); // thread cache traffic
    free(p);
    // A buffer glibc keeps per thread until exit (about 32 bytes).
    (void)!strsignal(1000 + (int)(id % 7));
    unsigned char random[8]; // glibc 2.41+: a vDSO state per thread
    (void)!getrandom(random, sizeof random, 0);
    if (id % 2) // dlerror state: per thread, released at exit
        (void)!dlsym(RTLD_DEFAULT, "tls_churn_no_such_symbol");
    return (void *)(intptr_t)(words[NWORDS - 1] == id + NWORDS - 1);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long max_growth_mb = argc > 2 ? atol(argv[2]) : 20;
    long checkpoint = n / 10, rss_at_checkpoint = 0, good = 0;
    pthread_key_create(&key, free_value);
    do // keys below 32 made on the way stay unused
        pthread_key_create(&high_key, free_value);
    while (high_key < 32);
    for (long first = 0; first < n; first += BATCH) {
        pthread_t tids[BATCH];
        int count = n - first < BATCH ? (int)(n - first) : BATCH;
        for (int k = 0; k < count; k++)
            if (pthread_create(&tids[k], NULL, worker, (void *)(intptr_t)(first + k)) != 0) {
                fprintf(stderr, "create %ld failed\n", first + k);
                return 1;
            }
        for (int k = 0; k < count; k++) {
            void *ret;
            pthread_join(tids[k], &ret);
            good += (intptr_t)ret;
        }
        if (first + count == checkpoint)
            rss_at_checkpoint = rss_kb();
    }
    long growth_kb = rss_kb() - rss_at_checkpoint;
    fprintf(stderr, "tls_churn: VmRSS after %ld threads %ld kB, growth to %ld threads %ld kB\n",
            checkpoint, rss_at_checkpoint, n, growth_kb);
    int grew = growth_kb > max_growth_mb * 1024;
    printf("%ld threads: ok %ld, key destructors %ld, not pristine %ld, RSS growth over %ld MB: "
           "%s\n",
           n, good, atomic_load(&key_dtors), atomic_load(&not_pristine), max_growth_mb,
           grew ? "yes" : "no");
    return good == n && atomic_load(&key_dtors) == 2 * n && !atomic_load(&not_pristine) && !grew
               ? 0
               : 1;
}
