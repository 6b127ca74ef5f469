// tls_dlclose: libraries with __thread variables are dlopen'ed, used by 64
// threads, and dlclose'd, in turn: tlslibA (dynamic TLS: a block per thread
// from malloc) and tlslibB (static TLS, as it has an initial-exec variable,
// and a bigger block than A's).  Each reload usually takes the module id the
// previous one gave back, while threads of earlier phases are gone -- so a
// new thread may reuse the memory of one that knew the old module under that
// id.  Every thread must see the fresh library's initial TLS image and its own
// copies; the executable's TLS and errno must start fresh too.  Then one
// thread loads and unloads both libraries 100 times while 2000 short-lived
// threads come and go (their TLS set up while module ids change under them).
// Ends with a malloc workout, where heap damage from a stray TLS write would
// show.
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 64
#define EXE_WORDS 32

struct lib {
    const char *file, *prefix;
    void *handle;
    int (*pristine)(void);
    void (*set)(int);
    int (*check)(int);
};
static struct lib libs[2] = {{.file = "libtlslibA.so", .prefix = "tlsA"},
                             {.file = "libtlslibB.so", .prefix = "tlsB"}};
static struct lib *current;
static atomic_long not_pristine, wrong_value;

__thread long exe_words[EXE_WORDS];
__thread int exe_init = 31337;

static void *sym(struct lib *l, const char *name)
{
    char full[64];
    snprintf(full, sizeof full, "%s_%s", l->prefix, name);
    void *p = dlsym(l->handle, full);
    if (!p) {
        fprintf(stderr, "dlsym %s: %s\n", full, dlerror());
        exit(1);
    }
    return p;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (errno != 0 || exe_init != 31337 || exe_words[0] || exe_words[EXE_WORDS - 1])
        atomic_fetch_add(&not_pristine, 1);
    if (current && !current->pristine())
        atomic_fetch_add(&not_pristine, 1);
    for (int r = 0; r < 4; r++) {
        int v = id * 100 + r;
        exe_init = -v;
        for (int i = 0; i < EXE_WORDS; i++)
            exe_words[i] = v + i;
        if (current)
            current->set(v);
        errno = v;
        if (r % 2)
            sched_yield();
        else
            usleep(100 + id % 4 * 100);
        int ok = errno == v && exe_init == -v && exe_words[EXE_WORDS - 1] == v + EXE_WORDS - 1;
        if (!ok || (current && !current->check(v)))
            atomic_fetch_add(&wrong_value, 1);
    }
    void *p = malloc(1000 + id); // leave something in the thread cache
    free(p);
    return NULL;
}

static void run_phase(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "create failed\n");
            exit(1);
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

static void load(struct lib *l)
{
    l->handle = dlopen(l->file, RTLD_NOW);
    if (!l->handle) {
        fprintf(stderr, "dlopen %s: %s\n", l->file, dlerror());
        exit(1);
    }
    l->pristine = (int (*)(void))sym(l, "pristine");
    l->set = (void (*)(int))sym(l, "set");
    l->check = (int (*)(int))sym(l, "check");
    current = l;
}

static int unload(struct lib *l)
{
    current = NULL;
    dlclose(l->handle);
    void *still = dlopen(l->file, RTLD_NOW | RTLD_NOLOAD);
    if (still)
        dlclose(still);
    return still == NULL;
}

// Loads and unloads the libraries while the main thread churns threads
// that use only the executable's TLS (current stays NULL: a library being
// unloaded must not be called).
static atomic_int churning;
static void *loader(void *arg)
{
    int cycles = 0;
    while (atomic_load(&churning) && cycles < 100) {
        for (int i = 0; i < 2; i++) {
            void *h = dlopen(libs[i].file, RTLD_NOW);
            if (!h) {
                fprintf(stderr, "dlopen %s: %s\n", libs[i].file, dlerror());
                exit(1);
            }
            sched_yield();
            dlclose(h);
        }
        cycles++;
    }
    return arg;
}

static void churn_while_loading(void)
{
    pthread_t l;
    atomic_store(&churning, 1);
    pthread_create(&l, NULL, loader, NULL);
    for (int batch = 0; batch < 2000 / 20; batch++) {
        pthread_t t[20];
        for (int i = 0; i < 20; i++)
            pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
        for (int i = 0; i < 20; i++)
            pthread_join(t[i], NULL);
    }
    atomic_store(&churning, 0);
    pthread_join(l, NULL);
}

static long malloc_workout(void)
{
    long bad = 0;
    enum { SLOTS = 512 };
    static unsigned char *p[SLOTS];
    static size_t n[SLOTS];
    for (int round = 0; round < 40000; round++) {
        int s = (round * 7919) % SLOTS;
        if (p[s]) {
            for (size_t i = 0; i < n[s]; i++)
                bad += p[s][i] != (unsigned char)(n[s] + i);
            free(p[s]);
        }
        n[s] = 8 + (round * 131) % 600;
        p[s] = malloc(n[s]);
        for (size_t i = 0; i < n[s]; i++)
            p[s][i] = (unsigned char)(n[s] + i);
    }
    for (int s = 0; s < SLOTS; s++)
        free(p[s]);
    return bad;
}

int main(void)
{
    alarm(60);
    int unloaded = 0, phases = 0;
    run_phase(); // threads that know no library
    const int order[] = {0, 1, 0, 1, 0, 1};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        load(&libs[order[k]]);
        run_phase();
        phases++;
        unloaded += unload(&libs[order[k]]);
        run_phase(); // no library again
    }
    churn_while_loading();
    long heap_bad = malloc_workout();
    printf("%d load/use/unload phases of %d threads, really unloaded %d\n", phases, THREADS,
           unloaded);
    printf("not pristine %ld, wrong values %ld, heap damage %ld\n", atomic_load(&not_pristine),
           atomic_load(&wrong_value), heap_bad);
    return atomic_load(&not_pristine) || atomic_load(&wrong_value) || heap_bad;
}
