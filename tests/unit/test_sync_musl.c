/* The sync layer on musl's object encodings, before the musl runtime can
 * run a fiberized program: syscalls/mutex.c, cond.c, rwlock.c, sem.c and
 * barrier.c are linked into this musl program over a stand-in runtime
 * (below), and their interposers are the program's own pthread functions.
 * Real threads play both fibers and threads that are not fibers (a thread
 * that calls as_fiber() takes the fiber paths: polling process-shared
 * objects, backing off on special mutexes).  What must hold:
 *   - exact totals under contention for every object, as natively;
 *   - our changes and musl's own uninterposed functions agree on every
 *     object (fz_real.* here is musl's: its trylock, unlock, getvalue,
 *     consistent...), so the encodings really are musl's;
 *   - process-shared objects work against a fork child that runs musl's
 *     own code, as another process would;
 *   - errno values as musl gives them.
 * Built with musl-gcc only (Makefile); prints TAP.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>
#include "runtime/det.h"
#include "runtime/identity.h"
#include "runtime/park.h"
#include "runtime/sched.h"
#include "runtime/tls.h"
#include "syscalls/hook.h"
#include "syscalls/sync.h"
#include "tests/unit/tap.h"

/* musl declares none of the *clock* variants; fiberize exports them. */
int pthread_cond_clockwait(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);

/* ---- the stand-in runtime ---------------------------------------------- */

struct fz_runtime fz_rt = {.active = true, .target = 2};
struct fz_hook_settings fz_hook_settings = {.families = FZ_HOOK_ALL};
struct fz_real fz_real;
bool fz_det_on;
uint64_t fz_virtual_ns;
int (*fz_os_clock_gettime)(clockid_t, struct timespec *) = clock_gettime;

static __thread bool fiber_mode;
static __thread struct fz_fiber fake_fiber;

/* From now on this thread takes the paths of a fiber. */
static void as_fiber(void)
{
    fake_fiber.state = FZ_FIBER_RUNNING;
    fake_fiber.tcb = (void *)pthread_self();
    fiber_mode = true;
}

struct fz_fiber *fz_self(void)
{
    return fiber_mode ? &fake_fiber : NULL;
}

/* musl's struct pthread keeps the tid 48 bytes in (runtime/tls_musl.c) */
ptrdiff_t fz_tcb_tid_offset = 48;
bool fz_cancel_requested_ever;

bool fz_tcb_cancel_pending(void *tcb)
{
    (void)tcb;
    return false;
}

struct fz_fiber *fz_ident_lookup(pid_t tid)
{
    (void)tid;
    return NULL;
}

void fz_yield(struct fz_fiber *self)
{
    (void)self;
    sched_yield();
}

void fz_sched_point(struct fz_fiber *self)
{
    (void)self;
}

bool fz_in_signal_handler(void)
{
    return false;
}

bool fz_unpark_addr_deferred(const void *addr)
{
    (void)addr;
    return false;
}

int fz_sleep_until(uint64_t deadline, int interruptible)
{
    (void)interruptible;
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
    return FZ_WAKE_TIMEOUT;
}

/* One queue for every address: a park sleeps on a global generation that
 * every unpark bumps (under the lock the validation ran under), so no
 * wake-up is lost and every waiter wakes -- spuriously, for most, which
 * every caller allows. */
static atomic_flag lot_lock = ATOMIC_FLAG_INIT;
static atomic_uint lot_generation;

int fz_park_addr(const void *addr, uint32_t bits, bool (*validate)(void *), void *ctx,
                 uint64_t deadline, int interruptible)
{
    (void)addr, (void)bits, (void)interruptible;
    while (atomic_flag_test_and_set(&lot_lock))
        ;
    if (validate && !validate(ctx)) {
        atomic_flag_clear(&lot_lock);
        return EAGAIN;
    }
    unsigned seen = atomic_load(&lot_generation);
    atomic_flag_clear(&lot_lock);
    struct timespec rel, *timeout = NULL;
    if (deadline) {
        uint64_t now = fz_now_ns();
        if (now >= deadline)
            return ETIMEDOUT;
        rel = (struct timespec){(time_t)((deadline - now) / 1000000000),
                                (long)((deadline - now) % 1000000000)};
        timeout = &rel;
    }
    syscall(SYS_futex, &lot_generation, FUTEX_WAIT_PRIVATE, seen, timeout);
    return deadline && fz_now_ns() >= deadline ? ETIMEDOUT : 0;
}

unsigned fz_unpark_addr(const void *addr, uint32_t bits, unsigned max)
{
    (void)addr, (void)bits, (void)max;
    while (atomic_flag_test_and_set(&lot_lock))
        ;
    atomic_fetch_add(&lot_generation, 1);
    atomic_flag_clear(&lot_lock);
    syscall(SYS_futex, &lot_generation, FUTEX_WAKE_PRIVATE, INT_MAX);
    return 1;
}

static void resolve_real(void)
{
#define FZ_TEST_RESOLVE(ret, name, args) fz_real.name = (ret(*) args)dlsym(RTLD_NEXT, #name);
    FZ_REAL_ALL_SYMBOLS(FZ_TEST_RESOLVE)
#undef FZ_TEST_RESOLVE
}

/* ---- helpers ----------------------------------------------------------- */

#define THREADS 8

static void run_threads(int n, void *(*fn)(void *))
{
    pthread_t t[THREADS * 2];
    for (long i = 0; i < n; i++)
        pthread_create(&t[i], NULL, fn, (void *)i);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static struct timespec in_ms(clockid_t clock, long ms)
{
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_nsec += (ms % 1000) * 1000000;
    t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000;
    t.tv_nsec %= 1000000000;
    return t;
}

static long long ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000LL + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void *shared_page(void)
{
    return mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

static int reap(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- mutexes ----------------------------------------------------------- */

#define ROUNDS 20000
static pthread_mutex_t counted;
static long counter;

static void *count_up(void *arg)
{
    if ((long)arg % 2)
        as_fiber();
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&counted);
        if (i % 3 == 0)
            pthread_mutex_lock(&counted); /* recursive: a level deeper */
        counter++;
        if (i % 3 == 0)
            pthread_mutex_unlock(&counted);
        pthread_mutex_unlock(&counted);
    }
    return NULL;
}

static void mutex_recursive_totals(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&counted, &a);
    counter = 0;
    run_threads(THREADS, count_up);
    TAP_CHECK(counter == (long)THREADS * ROUNDS, "recursive mutex: %d threads x %d, total %ld",
              THREADS, ROUNDS, counter);
}

static void *count_flat(void *arg)
{
    if ((long)arg % 2)
        as_fiber();
    for (int i = 0; i < ROUNDS; i++) {
        if (i % 5 == 0) {
            while (pthread_mutex_trylock(&counted) == EBUSY)
                ;
        } else if (i % 5 == 1) {
            struct timespec t = in_ms(CLOCK_REALTIME, 10000);
            if (pthread_mutex_timedlock(&counted, &t) != 0)
                abort();
        } else {
            pthread_mutex_lock(&counted);
        }
        counter++;
        pthread_mutex_unlock(&counted);
    }
    return NULL;
}

static void mutex_flat_totals(int type, const char *name)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutex_init(&counted, &a);
    counter = 0;
    run_threads(THREADS, count_flat);
    TAP_CHECK(counter == (long)THREADS * ROUNDS, "%s mutex (lock, trylock, timedlock): total %ld",
              name, counter);
}

static void mutex_musl_agrees(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

    /* a normal mutex we lock is locked for musl, and the reverse */
    pthread_mutex_lock(&m);
    int busy = fz_real.pthread_mutex_trylock(&m);
    pthread_mutex_unlock(&m);
    int free_again = fz_real.pthread_mutex_trylock(&m);
    int ours_busy = pthread_mutex_trylock(&m);
    fz_real.pthread_mutex_unlock(&m);
    TAP_CHECK(busy == EBUSY && free_again == 0 && ours_busy == EBUSY,
              "normal: musl sees our lock (%d), we see musl's (%d)", busy, ours_busy);

    /* recursive: our two levels are musl's two levels */
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m, &a);
    pthread_mutex_lock(&m);
    pthread_mutex_lock(&m);
    int r1 = fz_real.pthread_mutex_unlock(&m), r2 = fz_real.pthread_mutex_unlock(&m);
    int r3 = fz_real.pthread_mutex_unlock(&m);
    TAP_CHECK(r1 == 0 && r2 == 0 && r3 == EPERM,
              "recursive: musl unlocks our two levels, then EPERM (%d %d %d)", r1, r2, r3);
    fz_real.pthread_mutex_lock(&m);
    fz_real.pthread_mutex_lock(&m);
    r1 = pthread_mutex_unlock(&m), r2 = pthread_mutex_unlock(&m), r3 = pthread_mutex_unlock(&m);
    TAP_CHECK(r1 == 0 && r2 == 0 && r3 == EPERM,
              "recursive: we unlock musl's two levels, then EPERM (%d %d %d)", r1, r2, r3);

    /* errorcheck: musl's answers, and musl's list of held mutexes stays
     * whole across mixed lockers (musl unlinks on unlock: a mutex we took
     * without linking would crash it) */
    pthread_mutex_t e1, e2;
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&e1, &a);
    pthread_mutex_init(&e2, &a);
    pthread_mutex_lock(&e1);
    int dead = pthread_mutex_lock(&e1), tried = pthread_mutex_trylock(&e1);
    fz_real.pthread_mutex_lock(&e2);
    int u1 = fz_real.pthread_mutex_unlock(&e1), u2 = pthread_mutex_unlock(&e2);
    int u3 = pthread_mutex_unlock(&e1);
    TAP_CHECK(dead == EDEADLK && tried == EBUSY && u1 == 0 && u2 == 0 && u3 == EPERM,
              "errorcheck: EDEADLK %d, EBUSY %d, mixed unlocks %d %d, EPERM %d", dead, tried, u1,
              u2, u3);

    /* C11: mtx_* go through us (musl's own call its internal functions) */
    mtx_t c;
    mtx_init(&c, mtx_recursive);
    int l1 = mtx_lock(&c), l2 = mtx_trylock(&c);
    int musl_busy = fz_real.pthread_mutex_trylock((pthread_mutex_t *)&c);
    int cu1 = mtx_unlock(&c), cu2 = mtx_unlock(&c);
    TAP_CHECK(l1 == thrd_success && l2 == thrd_success && musl_busy == 0 && cu1 == thrd_success &&
                  cu2 == thrd_success && fz_real.pthread_mutex_unlock((pthread_mutex_t *)&c) == 0,
              "C11 recursive mtx: musl counts our levels");
}

static pthread_mutex_t held;
static atomic_int holder_ready;

static void *hold_for_100ms(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&held);
    atomic_store(&holder_ready, 1);
    usleep(100000);
    pthread_mutex_unlock(&held);
    return NULL;
}

static void mutex_errors(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    struct timespec t = in_ms(CLOCK_REALTIME, 50), start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int r = pthread_mutex_timedlock(&m, &t);
    long long waited = ms_since(&start);
    struct timespec bad = {0, 1000000000};
    int inval = pthread_mutex_timedlock(&m, &bad);
    pthread_mutex_unlock(&m);
    TAP_CHECK(r == ETIMEDOUT && waited >= 49 && inval == EINVAL,
              "timedlock: ETIMEDOUT after %lld ms, EINVAL", waited);

    /* an errorcheck unlock by a thread that does not hold it */
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&held, &a);
    atomic_store(&holder_ready, 0);
    pthread_t t2;
    pthread_create(&t2, NULL, hold_for_100ms, NULL);
    while (!atomic_load(&holder_ready))
        usleep(1000);
    int eperm = pthread_mutex_unlock(&held);
    int got = pthread_mutex_lock(&held); /* waits for the holder */
    pthread_mutex_unlock(&held);
    pthread_join(t2, NULL);
    TAP_CHECK(eperm == EPERM && got == 0, "errorcheck: EPERM for another's, lock after wait");
}

/* A robust mutex is special: musl's code; a fiber polls it. */
static pthread_mutex_t robust;

static void *die_holding(void *arg)
{
    (void)arg;
    fz_real.pthread_mutex_lock(&robust);
    return NULL; /* musl marks it owner-dead at exit */
}

static void *robust_as_fiber(void *arg)
{
    (void)arg;
    as_fiber();
    long r = pthread_mutex_lock(&robust);
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(&robust); /* musl's own: it must see us as owner */
        pthread_mutex_unlock(&robust);
    }
    return (void *)r;
}

static void mutex_robust(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &a);
    pthread_t t;
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    void *r;
    pthread_create(&t, NULL, robust_as_fiber, NULL);
    pthread_join(t, &r);
    int again = pthread_mutex_trylock(&robust);
    pthread_mutex_unlock(&robust);
    TAP_CHECK((long)r == EOWNERDEAD && again == 0,
              "robust: a fiber gets EOWNERDEAD (%ld), makes it consistent", (long)r);
}

/* A process-shared mutex against a fork child that runs musl's code. */
static void mutex_pshared(void)
{
    struct {
        pthread_mutex_t m;
        long n;
    } *sh = shared_page();
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->m, &a);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < ROUNDS; i++) {
            fz_real.pthread_mutex_lock(&sh->m);
            sh->n++;
            fz_real.pthread_mutex_unlock(&sh->m);
        }
        _exit(0);
    }
    as_fiber();
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&sh->m);
        sh->n++;
        pthread_mutex_unlock(&sh->m);
    }
    fiber_mode = false;
    int status = reap(pid);
    TAP_CHECK(sh->n == 2L * ROUNDS && status == 0, "pshared mutex with a musl child: total %ld",
              sh->n);
}

/* ---- condition variables ----------------------------------------------- */

#define QUEUE 8
#define ITEMS 20000
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static int queue[QUEUE], qhead, qlen;
static atomic_long consumed_sum;

static void *produce(void *arg)
{
    if ((long)arg % 2)
        as_fiber();
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&qlock);
        while (qlen == QUEUE)
            pthread_cond_wait(&not_full, &qlock);
        queue[(qhead + qlen++) % QUEUE] = i;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qlock);
    }
    return NULL;
}

static void *consume(void *arg)
{
    if ((long)arg % 2)
        as_fiber();
    long sum = 0;
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&qlock);
        while (qlen == 0)
            pthread_cond_wait(&not_empty, &qlock);
        sum += queue[qhead];
        qhead = (qhead + 1) % QUEUE;
        qlen--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qlock);
    }
    atomic_fetch_add(&consumed_sum, sum);
    return NULL;
}

static void *produce_or_consume(void *arg)
{
    return (long)arg < 2 ? produce(arg) : consume(arg);
}

static void cond_checksum(void)
{
    run_threads(4, produce_or_consume);
    long want = 2L * ITEMS * (ITEMS + 1) / 2;
    TAP_CHECK(atomic_load(&consumed_sum) == want, "cond: bounded buffer, sum %ld (want %ld)",
              atomic_load(&consumed_sum), want);
}

static void cond_timeouts(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t c;
    pthread_cond_init(&c, &ca);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&m);
    struct timespec t = in_ms(CLOCK_MONOTONIC, 60), start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int r;
    do
        r = pthread_cond_timedwait(&c, &m, &t);
    while (r == 0);
    long long waited = ms_since(&start);
    int relocked = pthread_mutex_trylock(&m) == EBUSY;
    pthread_mutex_unlock(&m);
    TAP_CHECK(r == ETIMEDOUT && waited >= 59 && waited < 1000 && relocked,
              "cond on CLOCK_MONOTONIC (musl's _c_clock): ETIMEDOUT after %lld ms, mutex held",
              waited);

    /* musl checks the mutex first: EPERM for an errorcheck one not held */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t e;
    pthread_mutex_init(&e, &ma);
    struct timespec bad = {0, -1};
    int eperm = pthread_cond_timedwait(&c, &e, &bad);
    pthread_mutex_lock(&e);
    int inval = pthread_cond_timedwait(&c, &e, &bad);
    pthread_mutex_unlock(&e);
    TAP_CHECK(eperm == EPERM && inval == EINVAL, "cond: EPERM before EINVAL (%d, %d)", eperm,
              inval);

    /* musl's own signal finds no waiter in a private condvar we used */
    TAP_CHECK(fz_real.pthread_cond_broadcast(&c) == 0 && pthread_cond_destroy(&c) == 0,
              "cond: musl's broadcast and destroy on a condvar we used");

    /* pthread_cond_clockwait: musl has none, ours makes it */
    pthread_cond_t rc = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&m);
    t = in_ms(CLOCK_MONOTONIC, 30);
    clock_gettime(CLOCK_MONOTONIC, &start);
    do
        r = pthread_cond_clockwait(&rc, &m, CLOCK_MONOTONIC, &t);
    while (r == 0);
    waited = ms_since(&start);
    pthread_mutex_unlock(&m);
    TAP_CHECK(r == ETIMEDOUT && waited >= 29, "cond_clockwait MONOTONIC: ETIMEDOUT after %lld ms",
              waited);
}

/* C11 cnd_* go through us too. */
static cnd_t c11_cond;
static mtx_t c11_mtx;
static int c11_turn;

static void *c11_ping(void *arg)
{
    long me = (long)arg;
    if (me)
        as_fiber();
    for (int i = 0; i < 2000; i++) {
        mtx_lock(&c11_mtx);
        while (c11_turn != me)
            cnd_wait(&c11_cond, &c11_mtx);
        c11_turn = !me;
        cnd_broadcast(&c11_cond);
        mtx_unlock(&c11_mtx);
    }
    return NULL;
}

static void cond_c11(void)
{
    mtx_init(&c11_mtx, mtx_plain);
    cnd_init(&c11_cond);
    run_threads(2, c11_ping);
    /* our words are where musl's private wait would find a list: empty */
    TAP_CHECK(c11_cond.__u.__p[1] == NULL && c11_cond.__u.__p[5] == NULL && c11_turn == 0,
              "C11 cnd/mtx: 2 x 2000 turns, musl's waiter list untouched");
}

/* A process-shared condvar: a fiber polls in musl's protocol, the child
 * signals with musl's own code. */
static void cond_pshared(void)
{
    struct shared {
        pthread_mutex_t m;
        pthread_cond_t c;
        int turn;
        long turns;
    } *sh = shared_page();
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->m, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&sh->c, &ca);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 300; i++) {
            fz_real.pthread_mutex_lock(&sh->m);
            while (sh->turn != 1)
                fz_real.pthread_cond_wait(&sh->c, &sh->m);
            sh->turn = 0;
            sh->turns++;
            fz_real.pthread_cond_broadcast(&sh->c);
            fz_real.pthread_mutex_unlock(&sh->m);
        }
        _exit(0);
    }
    as_fiber();
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&sh->m);
        while (sh->turn != 0)
            pthread_cond_wait(&sh->c, &sh->m);
        sh->turn = 1;
        sh->turns++;
        pthread_cond_broadcast(&sh->c);
        pthread_mutex_unlock(&sh->m);
    }
    int status = reap(pid);
    /* a timed wait nobody signals ends on time, mutex held */
    struct timespec t = in_ms(CLOCK_REALTIME, 40), start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&sh->m);
    int r;
    do
        r = pthread_cond_timedwait(&sh->c, &sh->m, &t);
    while (r == 0);
    long long waited = ms_since(&start);
    pthread_mutex_unlock(&sh->m);
    fiber_mode = false;
    TAP_CHECK(sh->turns == 600 && status == 0 && r == ETIMEDOUT && waited >= 39 &&
                  sh->c.__u.__i[3] == 0,
              "pshared cond with a musl child: %ld turns, time-out after %lld ms, waiters %d",
              sh->turns, waited, sh->c.__u.__i[3]);
    TAP_CHECK(pthread_cond_destroy(&sh->c) == 0, "pshared cond: musl's destroy returns");
}

/* ---- rwlocks ----------------------------------------------------------- */

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long rw_value;
static atomic_long rw_bad_reads;

static void *rw_worker(void *arg)
{
    if ((long)arg % 2)
        as_fiber();
    for (int i = 0; i < ROUNDS; i++) {
        if (i % 4 == 0) {
            pthread_rwlock_wrlock(&rw);
            long v = rw_value;
            rw_value = -1;
            sched_yield();
            rw_value = v + 1;
            pthread_rwlock_unlock(&rw);
        } else {
            pthread_rwlock_rdlock(&rw);
            if (rw_value < 0)
                atomic_fetch_add(&rw_bad_reads, 1);
            pthread_rwlock_unlock(&rw);
        }
    }
    return NULL;
}

static void rwlock_all(void)
{
    run_threads(THREADS, rw_worker);
    TAP_CHECK(rw_value == (long)THREADS * ROUNDS / 4 && atomic_load(&rw_bad_reads) == 0,
              "rwlock: %ld writes, %ld torn reads", rw_value, atomic_load(&rw_bad_reads));

    pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    pthread_rwlock_wrlock(&l);
    int musl_rd = fz_real.pthread_rwlock_tryrdlock(&l);
    pthread_rwlock_unlock(&l);
    pthread_rwlock_rdlock(&l);
    pthread_rwlock_rdlock(&l);
    int musl_wr = fz_real.pthread_rwlock_trywrlock(&l);
    fz_real.pthread_rwlock_unlock(&l);
    fz_real.pthread_rwlock_unlock(&l);
    int free_now = fz_real.pthread_rwlock_trywrlock(&l);
    int ours_busy = pthread_rwlock_tryrdlock(&l);
    fz_real.pthread_rwlock_unlock(&l);
    TAP_CHECK(musl_rd == EBUSY && musl_wr == EBUSY && free_now == 0 && ours_busy == EBUSY &&
                  l.__u.__i[0] == 0,
              "rwlock: musl's try/unlock agree with our encoding");

    struct timespec bad = {0, 1000000000};
    int rd = pthread_rwlock_timedrdlock(&l, &bad);
    int wr = pthread_rwlock_timedwrlock(&l, &bad);
    pthread_rwlock_unlock(&l);
    int wr_free = pthread_rwlock_timedwrlock(&l, &bad);
    pthread_rwlock_unlock(&l);
    TAP_CHECK(rd == 0 && wr == EINVAL && wr_free == 0,
              "rwlock, invalid time: taken when free (%d %d), else EINVAL (%d)", rd, wr_free, wr);

    struct timespec t = in_ms(CLOCK_REALTIME, 30), start;
    pthread_rwlock_wrlock(&l);
    clock_gettime(CLOCK_MONOTONIC, &start);
    int timed = pthread_rwlock_timedwrlock(&l, &t); /* musl: no EDEADLK, waits */
    long long waited = ms_since(&start);
    pthread_rwlock_unlock(&l);
    TAP_CHECK(timed == ETIMEDOUT && waited >= 29,
              "rwlock: write owner's relock times out as in musl (%lld ms)", waited);
}

/* ---- semaphores -------------------------------------------------------- */

static sem_t items;
static atomic_long sem_taken;

static void *sem_worker(void *arg)
{
    long me = (long)arg;
    if (me % 2)
        as_fiber();
    for (int i = 0; i < ROUNDS; i++) {
        if (me < THREADS / 2) {
            sem_post(&items);
        } else {
            while (sem_wait(&items) != 0)
                ;
            atomic_fetch_add(&sem_taken, 1);
        }
    }
    return NULL;
}

static void sem_all(void)
{
    sem_init(&items, 0, 0);
    run_threads(THREADS, sem_worker);
    int value;
    sem_getvalue(&items, &value);
    TAP_CHECK(
        atomic_load(&sem_taken) == (long)THREADS / 2 * ROUNDS && value == 0 && items.__val[1] == 0,
        "sem: %ld taken, value %d, waiters %d", atomic_load(&sem_taken), value, items.__val[1]);

    sem_post(&items);
    sem_post(&items);
    sem_getvalue(&items, &value);
    int t1 = sem_trywait(&items), t2 = sem_trywait(&items), t3 = sem_trywait(&items);
    int again = errno;
    TAP_CHECK(value == 2 && t1 == 0 && t2 == 0 && t3 == -1 && again == EAGAIN,
              "sem: musl's getvalue and trywait on our posts");

    struct timespec t = in_ms(CLOCK_REALTIME, 30), start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int r = sem_timedwait(&items, &t), e = errno;
    long long waited = ms_since(&start);
    TAP_CHECK(r == -1 && e == ETIMEDOUT && waited >= 29, "sem_timedwait: ETIMEDOUT after %lld ms",
              waited);

    /* musl takes a unit before it looks at the time */
    struct timespec bad = {0, 1000000000};
    sem_post(&items);
    int took = sem_timedwait(&items, &bad);
    r = sem_timedwait(&items, &bad), e = errno;
    TAP_CHECK(took == 0 && r == -1 && e == EINVAL,
              "sem_timedwait, invalid time: takes a unit (%d), else EINVAL (%d)", took, e);

    sem_t full;
    sem_init(&full, 0, SEM_VALUE_MAX);
    r = sem_post(&full), e = errno;
    TAP_CHECK(r == -1 && e == EOVERFLOW, "sem_post at SEM_VALUE_MAX: EOVERFLOW");

    /* a semaphore musl left at -1 (taken last with a sleeper counted) */
    sem_t m;
    sem_init(&m, 0, 0);
    m.__val[0] = -1;
    sem_post(&m);
    sem_getvalue(&m, &value);
    TAP_CHECK(value == 1 && sem_trywait(&m) == 0, "sem: our post turns musl's -1 into 1");
}

static void sem_pshared(void)
{
    sem_t *s = shared_page();
    sem_init(&s[0], 1, 0);
    sem_init(&s[1], 1, 0);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 300; i++) {
            fz_real.sem_wait(&s[0]);
            sem_post(&s[1]); /* hooks see a shared one: musl's post */
        }
        _exit(0);
    }
    as_fiber();
    int errors = 0;
    for (int i = 0; i < 300; i++) {
        sem_post(&s[0]);
        if (sem_wait(&s[1]) != 0)
            errors++;
    }
    fiber_mode = false;
    TAP_CHECK(errors == 0 && reap(pid) == 0, "pshared sem with a musl child: 300 round trips");
}

/* ---- barriers ---------------------------------------------------------- */

static pthread_barrier_t bar;
static atomic_int serials, early;
static atomic_int arrived[64];

static void *barrier_worker(void *arg)
{
    if ((long)arg % 2)
        as_fiber();
    for (int r = 0; r < 64; r++) {
        atomic_fetch_add(&arrived[r], 1);
        if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&serials, 1);
        if (atomic_load(&arrived[r]) != 4)
            atomic_fetch_add(&early, 1);
    }
    return NULL;
}

static void barrier_all(void)
{
    pthread_barrier_init(&bar, NULL, 4);
    run_threads(4, barrier_worker);
    int d = pthread_barrier_destroy(&bar);
    TAP_CHECK(atomic_load(&serials) == 64 && atomic_load(&early) == 0 && d == 0 &&
                  bar.__u.__i[0] == 0 && bar.__u.__p[3] == NULL,
              "barrier: 4 threads x 64 rounds, %d serial, %d early, musl's words untouched",
              atomic_load(&serials), atomic_load(&early));

    pthread_barrier_t one;
    pthread_barrier_init(&one, NULL, 1);
    TAP_CHECK(pthread_barrier_wait(&one) == PTHREAD_BARRIER_SERIAL_THREAD &&
                  pthread_barrier_wait(&one) == PTHREAD_BARRIER_SERIAL_THREAD,
              "barrier of 1: serial every time");
}

static void barrier_pshared(void)
{
    struct {
        pthread_barrier_t b;
        atomic_int arrived[64];
        atomic_int serials;
    } *sh = shared_page();
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&sh->b, &a, 2);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (int r = 0; r < 64; r++) {
            atomic_fetch_add(&sh->arrived[r], 1);
            if (r % 16 == 8)
                usleep(20000);
            if (fz_real.pthread_barrier_wait(&sh->b) == PTHREAD_BARRIER_SERIAL_THREAD)
                atomic_fetch_add(&sh->serials, 1);
            bad += atomic_load(&sh->arrived[r]) != 2;
        }
        _exit(bad);
    }
    as_fiber();
    int bad = 0;
    for (int r = 0; r < 64; r++) {
        atomic_fetch_add(&sh->arrived[r], 1);
        if (r % 16 == 0)
            usleep(20000);
        if (pthread_barrier_wait(&sh->b) == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&sh->serials, 1);
        bad += atomic_load(&sh->arrived[r]) != 2;
    }
    int d = pthread_barrier_destroy(&sh->b);
    fiber_mode = false;
    int status = reap(pid);
    TAP_CHECK(atomic_load(&sh->serials) == 64 && bad == 0 && status == 0 && d == 0,
              "pshared barrier with a musl child: %d serial, early %d/%d",
              atomic_load(&sh->serials), bad, status);
}

int main(void)
{
    resolve_real();
    const char *why = NULL;
    TAP_CHECK(fz_sync_layout_check(&why), "start-up check of musl's encodings: %s",
              why ? why : "as sync_layout_musl.h says");
    mutex_flat_totals(PTHREAD_MUTEX_NORMAL, "normal");
    mutex_flat_totals(PTHREAD_MUTEX_ERRORCHECK, "errorcheck");
    mutex_recursive_totals();
    mutex_musl_agrees();
    mutex_errors();
    mutex_robust();
    mutex_pshared();
    cond_checksum();
    cond_timeouts();
    cond_c11();
    cond_pshared();
    rwlock_all();
    sem_all();
    sem_pshared();
    barrier_all();
    barrier_pshared();
    return tap_done();
}
