// tls_dlopen [N]: a library with __thread variables is dlopen'ed after N
// threads (default 1000) exist and are blocked in a pipe read; then every
// one of them uses it.  The library (tests/programs/lib/tlslibB.c) has
// general-dynamic variables (allocated lazily per thread by __tls_get_addr)
// and an initial-exec one (static TLS surplus, initialised by ld.so for every
// thread it knows at dlopen time).  Each thread must see the initial image,
// get its own copies at addresses no other thread has, and keep its values
// across sleeps and yields.  Threads created after the dlopen check the same.
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

#define LATE 100 // threads created after the dlopen
#define ROUNDS 4

static struct {
    int (*pristine)(void);
    void (*set)(int);
    int (*check)(int);
    void *(*addr)(void);
    void *(*ie_addr)(void);
} lib;

static int gate[2]; // one byte per waiting thread, written after the dlopen
static atomic_int ready;
static atomic_long not_pristine, wrong_value, addr_moved, read_failed;
static void **gd_addrs, **ie_addrs;
__thread int exe_tls = 99; // the executable's own TLS, next to the library's

static void use_library(int id)
{
    if (!lib.pristine())
        atomic_fetch_add(&not_pristine, 1);
    void *gd = lib.addr(), *ie = lib.ie_addr();
    gd_addrs[id] = gd;
    ie_addrs[id] = ie;
    for (int r = 0; r < ROUNDS; r++) {
        int v = id * 10 + r;
        lib.set(v);
        exe_tls = -v;
        if (r % 2)
            sched_yield();
        else
            usleep(200 + id % 5 * 100);
        if (!lib.check(v) || exe_tls != -v)
            atomic_fetch_add(&wrong_value, 1);
        if (lib.addr() != gd || lib.ie_addr() != ie)
            atomic_fetch_add(&addr_moved, 1);
    }
}

static void *early(void *arg)
{
    int id = (int)(intptr_t)arg;
    exe_tls = id;
    atomic_fetch_add(&ready, 1);
    char c;
    if (read(gate[0], &c, 1) != 1) {
        atomic_fetch_add(&read_failed, 1);
        return NULL;
    }
    if (exe_tls != id)
        atomic_fetch_add(&wrong_value, 1);
    use_library(id);
    return NULL;
}

static void *late(void *arg)
{
    if (exe_tls != 99)
        atomic_fetch_add(&not_pristine, 1);
    use_library((int)(intptr_t)arg);
    return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

// Number of duplicate addresses among n (each thread must have its own).
static long duplicates(void **addrs, int n)
{
    qsort(addrs, n, sizeof *addrs, cmp_ptr);
    long dups = 0;
    for (int i = 1; i < n; i++)
        dups += addrs[i] == addrs[i - 1] || !addrs[i];
    return dups + !addrs[0];
}

static int load_library(void)
{
    void *h = dlopen("libtlslibB.so", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 0;
    }
    lib.pristine = (int (*)(void))dlsym(h, "tlsB_pristine");
    lib.set = (void (*)(int))dlsym(h, "tlsB_set");
    lib.check = (int (*)(int))dlsym(h, "tlsB_check");
    lib.addr = (void *(*)(void))dlsym(h, "tlsB_addr");
    lib.ie_addr = (void *(*)(void))dlsym(h, "tlsB_ie_addr");
    return lib.pristine && lib.set && lib.check && lib.addr && lib.ie_addr;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int total = n + LATE + 1;
    pthread_t *tids = calloc(n + LATE, sizeof *tids);
    gd_addrs = calloc(total, sizeof *gd_addrs);
    ie_addrs = calloc(total, sizeof *ie_addrs);
    alarm(60);
    if (pipe(gate) != 0) {
        perror("pipe");
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (pthread_create(&tids[i], NULL, early, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "create %d failed\n", i);
            return 1;
        }
    while (atomic_load(&ready) < n)
        usleep(1000);
    usleep(20000); // let them all reach the read
    if (dlsym(RTLD_DEFAULT, "tlsB_set")) {
        fprintf(stderr, "library loaded too early\n");
        return 1;
    }
    if (!load_library())
        return 1;
    char *bytes = calloc(n, 1);
    for (int done = 0; done < n;) {
        ssize_t w = write(gate[1], bytes + done, n - done);
        if (w <= 0) {
            perror("write");
            return 1;
        }
        done += (int)w;
    }
    for (int i = 0; i < LATE; i++)
        pthread_create(&tids[n + i], NULL, late, (void *)(intptr_t)(n + i));
    use_library(n + LATE); // main too
    for (int i = 0; i < n + LATE; i++)
        pthread_join(tids[i], NULL);
    long gd_dups = duplicates(gd_addrs, total), ie_dups = duplicates(ie_addrs, total);
    printf("%d threads blocked during dlopen, %d created after, and main\n", n, LATE);
    printf("not pristine %ld, wrong values %ld, addresses moved %ld, read failed %ld\n",
           atomic_load(&not_pristine), atomic_load(&wrong_value), atomic_load(&addr_moved),
           atomic_load(&read_failed));
    printf("shared addresses: general-dynamic %ld, initial-exec %ld\n", gd_dups, ie_dups);
    return atomic_load(&not_pristine) || atomic_load(&wrong_value) || atomic_load(&addr_moved) ||
           atomic_load(&read_failed) || gd_dups || ie_dups;
}
