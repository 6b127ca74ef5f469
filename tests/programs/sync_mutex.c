/* pthread mutexes: exact totals under contention, each kind's error codes,
 * static initializers and timed locks (never early, bounded lateness).
 * Prints only results that are the same natively and under fiberize.
 * Usage: sync_mutex [threads [iterations [plain]]]   (default 64 x 100000)
 * "plain": skip the robust / priority-inheritance / process-shared kinds. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "libc_compat.h"
#include "timed_wait.h"

static int threads = 64;
static long iterations = 100000;

static pthread_mutex_t normal = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t adaptive = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static long counter;

static void check(const char *what, int got, int want)
{
    if (got == want)
        printf("ok %s\n", what);
    else
        printf("FAIL %s: got %d (%s), want %d (%s)\n", what, got, strerror(got), want,
               strerror(want));
}

static void *count_with(void *arg)
{
    pthread_mutex_t *m = arg;
    bool nest = m == &recursive;
    for (long i = 0; i < iterations; i++) {
        pthread_mutex_lock(m);
        if (nest)
            pthread_mutex_lock(m);
        counter++;
        if (nest)
            pthread_mutex_unlock(m);
        pthread_mutex_unlock(m);
    }
    return NULL;
}

static void contend(const char *name, pthread_mutex_t *m, int nthreads)
{
    pthread_t *t = calloc(nthreads, sizeof *t);
    counter = 0;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, count_with, m);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    printf("%s: %d threads x %ld = %ld\n", name, nthreads, iterations, counter);
    free(t);
}

/* ---- run a call on another thread --------------------------------------- */

struct other {
    pthread_mutex_t *m;
    int (*op)(pthread_mutex_t *);
    int result;
};

static void *run_other(void *arg)
{
    struct other *o = arg;
    o->result = o->op(o->m);
    return NULL;
}

static int on_other_thread(int (*op)(pthread_mutex_t *), pthread_mutex_t *m)
{
    struct other o = {m, op, -1};
    pthread_t t;
    pthread_create(&t, NULL, run_other, &o);
    pthread_join(t, NULL);
    return o.result;
}

static void semantics(void)
{
    check("errorcheck lock", pthread_mutex_lock(&errorcheck), 0);
    check("errorcheck relock EDEADLK", pthread_mutex_lock(&errorcheck), EDEADLK);
    check("errorcheck trylock by owner EBUSY", pthread_mutex_trylock(&errorcheck), EBUSY);
    check("errorcheck unlock by other EPERM", on_other_thread(pthread_mutex_unlock, &errorcheck),
          EPERM);
    check("errorcheck trylock by other EBUSY", on_other_thread(pthread_mutex_trylock, &errorcheck),
          EBUSY);
    if (LIBC_REPORTS_DESTROY_BUSY)
        check("errorcheck destroy while locked EBUSY", pthread_mutex_destroy(&errorcheck), EBUSY);
    check("errorcheck unlock", pthread_mutex_unlock(&errorcheck), 0);
    check("errorcheck unlock unlocked EPERM", pthread_mutex_unlock(&errorcheck), EPERM);

    check("recursive lock 1", pthread_mutex_lock(&recursive), 0);
    check("recursive lock 2", pthread_mutex_lock(&recursive), 0);
    check("recursive trylock 3", pthread_mutex_trylock(&recursive), 0);
    check("recursive trylock by other EBUSY", on_other_thread(pthread_mutex_trylock, &recursive),
          EBUSY);
    check("recursive unlock by other EPERM", on_other_thread(pthread_mutex_unlock, &recursive),
          EPERM);
    for (int i = 0; i < 3; i++)
        check("recursive unlock", pthread_mutex_unlock(&recursive), 0);
    check("recursive unlock unlocked EPERM", pthread_mutex_unlock(&recursive), EPERM);
    check("recursive free for others", on_other_thread(pthread_mutex_trylock, &recursive), 0);
    /* the other thread exited holding it: it stays locked, owned by nobody here */
    check("recursive unlock of dead owner's EPERM", pthread_mutex_unlock(&recursive), EPERM);

    pthread_mutex_t m;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m, &a);
    check("initialized recursive lock", pthread_mutex_lock(&m), 0);
    check("initialized recursive relock", pthread_mutex_lock(&m), 0);
    pthread_mutex_unlock(&m);
    pthread_mutex_unlock(&m);
    check("initialized recursive destroy", pthread_mutex_destroy(&m), 0);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&m, &a);
    pthread_mutex_lock(&m);
    check("initialized errorcheck relock EDEADLK", pthread_mutex_lock(&m), EDEADLK);
    pthread_mutex_unlock(&m);
    pthread_mutex_destroy(&m);
    pthread_mutexattr_destroy(&a);

    pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
    check("normal trylock", pthread_mutex_trylock(&plain), 0);
    check("normal trylock by other EBUSY", on_other_thread(pthread_mutex_trylock, &plain), EBUSY);
    check("normal unlock by other allowed", on_other_thread(pthread_mutex_unlock, &plain), 0);
    check("normal lock after foreign unlock", pthread_mutex_trylock(&plain), 0);
    pthread_mutex_unlock(&plain);
    check("normal destroy", pthread_mutex_destroy(&plain), 0);
}

/* Robust, priority-inheritance, priority-protect and process-shared
 * mutexes keep glibc's implementation: same totals, same error codes. */
static void special(const char *name, int type, int robust, int protocol, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutexattr_setrobust(&a, robust);
    pthread_mutexattr_setprotocol(&a, protocol);
    pthread_mutexattr_setpshared(&a, pshared);
    pthread_mutex_t m;
    int r = pthread_mutex_init(&m, &a);
    if (r) {
        printf("FAIL %s init: %s\n", name, strerror(r));
        return;
    }
    long saved = iterations;
    iterations = 2000;
    contend(name, &m, 8);
    iterations = saved;
    if (type == PTHREAD_MUTEX_ERRORCHECK) {
        pthread_mutex_lock(&m);
        check("special errorcheck relock EDEADLK", pthread_mutex_lock(&m), EDEADLK);
        check("special errorcheck unlock by other EPERM", on_other_thread(pthread_mutex_unlock, &m),
              EPERM);
        pthread_mutex_unlock(&m);
    }
    check("special trylock", pthread_mutex_trylock(&m), 0);
    check("special trylock by other EBUSY", on_other_thread(pthread_mutex_trylock, &m), EBUSY);
    pthread_mutex_unlock(&m);
    check("special destroy", pthread_mutex_destroy(&m), 0);
    pthread_mutexattr_destroy(&a);
}

/* Priority-protect: glibc asks the kernel about the locker's scheduling
 * by tid, so what a lock answers depends on the thread's policy (under
 * SCHED_OTHER a ceiling above 0 is EINVAL from sched_setscheduler).  The
 * answers are printed, to be the same natively and fiberized. */
static void *pp_in_thread(void *arg)
{
    pthread_mutex_t *m = arg;
    int r = pthread_mutex_lock(m);
    usleep(2000); /* a fiber may move to another carrier meanwhile */
    int u = r == 0 ? pthread_mutex_unlock(m) : -1;
    printf("priority protect, thread: lock %s, unlock %s\n", strerror(r),
           u < 0 ? "-" : strerror(u));
    return NULL;
}

static void priority_protect(void)
{
    for (int ceiling = 0; ceiling <= 1; ceiling++) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_PROTECT);
        int set = pthread_mutexattr_setprioceiling(&a, ceiling);
        pthread_mutex_t m;
        int init = pthread_mutex_init(&m, &a);
        int lock = pthread_mutex_lock(&m);
        int again = lock == 0 ? pthread_mutex_trylock(&m) : -1;
        for (int i = 0; lock == 0 && i < 5; i++)
            usleep(1000); /* held across naps: the main fiber may migrate */
        int unlock = lock == 0 ? pthread_mutex_unlock(&m) : -1;
        printf("priority protect ceiling %d: attr %s, init %s, lock %s, trylock %s, unlock %s\n",
               ceiling, strerror(set), strerror(init), strerror(lock),
               again < 0 ? "-" : strerror(again), unlock < 0 ? "-" : strerror(unlock));
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, pp_in_thread, &m);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        pthread_mutex_destroy(&m);
        pthread_mutexattr_destroy(&a);
    }
}

static void specials(void)
{
    priority_protect();
    special("robust", PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ROBUST, PTHREAD_PRIO_NONE,
            PTHREAD_PROCESS_PRIVATE);
    special("robust errorcheck", PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_ROBUST, PTHREAD_PRIO_NONE,
            PTHREAD_PROCESS_PRIVATE);
    special("priority inherit", PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_STALLED, PTHREAD_PRIO_INHERIT,
            PTHREAD_PROCESS_PRIVATE);
    special("process shared", PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_STALLED, PTHREAD_PRIO_NONE,
            PTHREAD_PROCESS_SHARED);
    special("process shared recursive", PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_STALLED,
            PTHREAD_PRIO_NONE, PTHREAD_PROCESS_SHARED);
}

/* ---- timed locks --------------------------------------------------------- */

/* lateness bound: generous, the machine is shared */
#define LATE_MS 2000

static void timed_on(const char *what, clockid_t clock, bool clocklock)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    for (int i = 0; i < 3; i++) {
        long ms = 20 + 30 * i;
        struct timespec abs = in_ms(clock, ms);
        int r = clocklock ? pthread_mutex_clocklock(&m, clock, &abs)
                          : pthread_mutex_timedlock(&m, &abs);
        long long left = now_ns(clock) - (abs.tv_sec * 1000000000LL + abs.tv_nsec);
        char name[96];
        snprintf(name, sizeof name, "%s %ld ms ETIMEDOUT", what, ms);
        check(name, r, ETIMEDOUT);
        if (left < 0 || left > LATE_MS * 1000000LL)
            printf("FAIL %s: woke %lld ns after the deadline\n", what, left);
        else
            printf("ok %s %ld ms not early, bounded lateness\n", what, ms);
    }
    struct timespec bad = {0, 1000000000};
    check("timedlock held, bad tv_nsec EINVAL", pthread_mutex_timedlock(&m, &bad), EINVAL);
    struct timespec past = {-1, 0};
    check("timedlock held, negative time ETIMEDOUT", pthread_mutex_timedlock(&m, &past), ETIMEDOUT);
    pthread_mutex_unlock(&m);
    check("timedlock free, bad tv_nsec succeeds", pthread_mutex_timedlock(&m, &bad), 0);
    pthread_mutex_unlock(&m);
    struct timespec soon = in_ms(CLOCK_REALTIME, 10);
    check("clocklock bad clock EINVAL",
          pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &soon), EINVAL);
}

/* A holder releases it while a timed locker waits: the locker gets it. */
static pthread_mutex_t handed = PTHREAD_MUTEX_INITIALIZER;

static void *release_later(void *arg)
{
    struct timespec d = {0, 50000000};
    nanosleep(&d, NULL);
    pthread_mutex_unlock(&handed);
    return arg;
}

static void timed_success(void)
{
    pthread_mutex_lock(&handed);
    pthread_t t;
    pthread_create(&t, NULL, release_later, NULL);
    struct timespec abs = in_ms(CLOCK_MONOTONIC, 10000);
    check("clocklock gets a mutex released in time",
          pthread_mutex_clocklock(&handed, CLOCK_MONOTONIC, &abs), 0);
    pthread_join(t, NULL);
    pthread_mutex_unlock(&handed);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        threads = atoi(argv[1]);
    if (argc > 2)
        iterations = atol(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    contend("normal", &normal, threads);
    contend("adaptive", &adaptive, threads);
    contend("recursive nested", &recursive, threads / 4 ? threads / 4 : 1);
    contend("errorcheck", &errorcheck, threads / 4 ? threads / 4 : 1);
    semantics();
    if (argc <= 3 || strcmp(argv[3], "plain") != 0)
        specials();
    timed_on("timedlock realtime", CLOCK_REALTIME, false);
    timed_on("clocklock monotonic", CLOCK_MONOTONIC, true);
    timed_on("clocklock realtime", CLOCK_REALTIME, true);
    timed_success();
    return 0;
}
