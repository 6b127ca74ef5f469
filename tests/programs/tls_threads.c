// link: -ltlslibA
// tls_threads: 500 threads keep their own __thread variables -- in the
// executable and in a shared library (direct initial-exec access and the
// library's own accessors) -- and their own errno across usleep, sched_yield,
// a blocking socketpair read and a pthread mutex wait, at fixed addresses.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NTHREADS 500
#define ROUNDS 12
#define NWORDS 48
#ifndef MAX_REPORTS
#define MAX_REPORTS 20 // lines of detail on stderr
#endif

// The library's variables and accessors (tests/programs/lib/tlslibA.c).
extern __thread int tlsA_id;
extern __thread int tlsA_init;
void tlsA_set(int v);
int tlsA_check(int v);
int tlsA_get(void);
int *tlsA_id_addr(void);
int *tlsA_init_addr(void);
int tlsA_pristine(void);

// Not static, so the compiler must reload them after every call.
__thread int t_id;
__thread int t_init = 4242;
__thread long t_words[NWORDS];

static int pairs[NTHREADS / 2][2];
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static long mutex_counter;
static atomic_long mismatches;
static atomic_int reported;

struct addrs {
    int *t_id, *t_init, *errno_p, *a_id_direct, *a_id_lib, *a_init_lib;
};

static void take_addrs(struct addrs *a)
{
    a->t_id = &t_id;
    a->t_init = &t_init;
    a->errno_p = &errno;
    a->a_id_direct = &tlsA_id;
    a->a_id_lib = tlsA_id_addr();
    a->a_init_lib = tlsA_init_addr();
}

static void store(int v)
{
    t_id = v;
    for (int i = 0; i < NWORDS; i++)
        t_words[i] = (long)v * NWORDS + i;
    tlsA_set(v);
}

static void fail(int id, int round, const char *where, const char *what)
{
    atomic_fetch_add(&mismatches, 1);
    if (atomic_fetch_add(&reported, 1) < MAX_REPORTS)
        fprintf(stderr, "tls_threads: thread %d round %d after %s: %s\n", id, round, where, what);
}

// Check every variable holds v and errno holds err, at the addresses first seen.
static void check(int id, int round, const char *where, int v, int err, const struct addrs *a0)
{
    int saved = errno; // read first: everything below may change it
    struct addrs a;
    take_addrs(&a);
    if (memcmp(&a, a0, sizeof a) != 0)
        fail(id, round, where, "a TLS address changed");
    if (saved != err)
        fail(id, round, where, "errno changed");
    if (t_id != v || t_init != 4242)
        fail(id, round, where, "executable __thread int changed");
    for (int i = 0; i < NWORDS; i++)
        if (t_words[i] != (long)v * NWORDS + i) {
            fail(id, round, where, "executable __thread array changed");
            break;
        }
    if (tlsA_id != v || tlsA_get() != v || tlsA_init != 777)
        fail(id, round, where, "library __thread int changed");
    if (!tlsA_check(v))
        fail(id, round, where, "library __thread variables changed (accessor)");
    errno = saved;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = pairs[id / 2][id % 2];
    struct addrs a0;
    take_addrs(&a0);
    // A fresh thread sees the initial TLS images.
    int pristine =
        t_id == 0 && t_init == 4242 && tlsA_id == 0 && tlsA_init == 777 && tlsA_pristine();
    for (int i = 0; i < NWORDS; i++)
        pristine &= t_words[i] == 0;
    if (!pristine)
        fail(id, -1, "start", "initial TLS image wrong");
    for (int round = 0; round < ROUNDS; round++) {
        int v = id * 1000 + round * 10;
        int err = 100000 + id * 100 + round * 10;

        store(v + 1);
        errno = err + 1;
        usleep(50 + (id * 7 + round) % 13 * 40);
        check(id, round, "usleep", v + 1, err + 1, &a0);

        store(v + 2);
        errno = err + 2;
        sched_yield();
        check(id, round, "sched_yield", v + 2, err + 2, &a0);

        // Ping-pong with the partner thread: the even one writes first.
        char out = (char)round, in = 0;
        store(v + 3);
        if (id % 2 == 0 && write(fd, &out, 1) != 1)
            fail(id, round, "write", strerror(errno));
        errno = err + 3;
        ssize_t n = read(fd, &in, 1);
        if (n != 1 || in != (char)round) {
            fail(id, round, "read", n < 0 ? strerror(errno) : "short or wrong byte");
            errno = err + 3;
        }
        check(id, round, "socket read", v + 3, err + 3, &a0);
        if (id % 2 == 1 && write(fd, &out, 1) != 1)
            fail(id, round, "write", strerror(errno));

        // A mutex wait: held briefly (never across a sleep), so others wait.
        store(v + 4);
        errno = err + 4;
        pthread_mutex_lock(&mutex);
        check(id, round, "mutex lock", v + 4, err + 4, &a0);
        for (volatile int spin = 0; spin < 2000; spin++)
            ;
        mutex_counter++;
        pthread_mutex_unlock(&mutex);
        check(id, round, "mutex unlock", v + 4, err + 4, &a0);
    }
    return (void *)(intptr_t)(id * 3 + 1);
}

int main(void)
{
    static pthread_t tids[NTHREADS];
    alarm(120);
    for (int i = 0; i < NTHREADS / 2; i++)
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) != 0) {
            perror("socketpair");
            return 1;
        }
    store(-7); // main's own copies must survive the whole run
    for (int i = 0; i < NTHREADS; i++) {
        int err = pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i);
        if (err) {
            fprintf(stderr, "tls_threads: create %d: %s\n", i, strerror(err));
            return 1;
        }
    }
    long sum = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        pthread_join(tids[i], &ret);
        if ((intptr_t)ret != i * 3 + 1)
            fail(i, -1, "join", "wrong return value");
        sum += (intptr_t)ret;
    }
    if (t_id != -7 || tlsA_id != -7 || !tlsA_check(-7))
        fail(-1, -1, "end", "main's TLS changed");
    if (mutex_counter != (long)NTHREADS * ROUNDS)
        fail(-1, -1, "end", "mutex counter wrong");
    printf("%d threads x %d rounds (usleep, yield, socket read, mutex)\n", NTHREADS, ROUNDS);
    printf("mutex counter %ld, return sum %ld\n", mutex_counter, sum);
    printf("mismatches: %ld\n", atomic_load(&mismatches));
    return atomic_load(&mismatches) ? 1 : 0;
}
