/* syscall(SYS_futex, ...) as programs use it directly: value mismatch,
 * time-outs (relative, absolute on both clocks), wake counts, bitsets,
 * requeue, and a futex-based lock with an exact total.
 * Usage: sync_futex [threads iterations]   (default 16 20000) */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PRIV FUTEX_PRIVATE_FLAG

static long futex(atomic_uint *uaddr, int op, uint32_t val, const struct timespec *ts,
                  atomic_uint *uaddr2, uint32_t val3)
{
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

static void check(const char *what, long got, long want, int got_errno, int want_errno)
{
    if (got == want && (want != -1 || got_errno == want_errno))
        printf("ok %s\n", what);
    else
        printf("FAIL %s: got %ld errno %d (%s), want %ld errno %d\n", what, got, got_errno,
               strerror(got_errno), want, want_errno);
}

/* errno is read after the call (argument order is unspecified) */
#define CHECK(what, call, want, want_errno)                                                        \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long r_ = (call);                                                                          \
        check(what, r_, want, errno, want_errno);                                                  \
    } while (0)

static long long ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define LATE_NS 2000000000LL

static void not_early(const char *what, long long from, long long deadline, clockid_t clock)
{
    long long late = ns(clock) - deadline;
    if (late < 0 || late > LATE_NS)
        printf("FAIL %s: returned %lld ns after the deadline (started %lld ns before it)\n", what,
               late, deadline - from);
    else
        printf("ok %s not early, bounded lateness\n", what);
}

static void timeouts(void)
{
    atomic_uint word = 7;
    CHECK("wait on a changed value EAGAIN", futex(&word, FUTEX_WAIT | PRIV, 8, NULL, NULL, 0), -1,
          EAGAIN);

    struct timespec rel = {0, 50000000};
    long long start = ns(CLOCK_MONOTONIC);
    CHECK("relative wait ETIMEDOUT", futex(&word, FUTEX_WAIT | PRIV, 7, &rel, NULL, 0), -1,
          ETIMEDOUT);
    not_early("relative wait", start, start + 50000000, CLOCK_MONOTONIC);

    for (int c = 0; c < 2; c++) {
        clockid_t clock = c ? CLOCK_REALTIME : CLOCK_MONOTONIC;
        long long now = ns(clock), deadline = now + 40000000;
        struct timespec abs = {deadline / 1000000000LL, deadline % 1000000000LL};
        CHECK(c ? "bitset wait realtime ETIMEDOUT" : "bitset wait monotonic ETIMEDOUT",
              futex(&word, FUTEX_WAIT_BITSET | PRIV | (c ? FUTEX_CLOCK_REALTIME : 0), 7, &abs, NULL,
                    FUTEX_BITSET_MATCH_ANY),
              -1, ETIMEDOUT);
        not_early(c ? "bitset wait realtime" : "bitset wait monotonic", now, deadline, clock);
    }
    struct timespec bad = {0, 1000000000};
    CHECK("bad timeout EINVAL", futex(&word, FUTEX_WAIT | PRIV, 7, &bad, NULL, 0), -1, EINVAL);
    CHECK("bitset 0 EINVAL", futex(&word, FUTEX_WAIT_BITSET | PRIV, 7, &rel, NULL, 0), -1, EINVAL);
    errno = EDOM;
    long r = futex(&word, FUTEX_WAKE | PRIV, INT_MAX, NULL, NULL, 0);
    int e = errno;
    check("wake with nobody waiting", r, 0, 0, 0);
    check("errno untouched by a successful call", e, EDOM, 0, 0);
}

/* ---- a futex lock (0 free, 1 taken, 2 taken with waiters) ---------------- */

static atomic_uint lock_word;
static long counter;
static long iterations = 20000;

static void flock(void)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong(&lock_word, &c, 1))
        return;
    if (c != 2)
        c = atomic_exchange(&lock_word, 2);
    while (c != 0) {
        futex(&lock_word, FUTEX_WAIT | PRIV, 2, NULL, NULL, 0);
        c = atomic_exchange(&lock_word, 2);
    }
}

static void funlock(void)
{
    if (atomic_exchange(&lock_word, 0) == 2)
        futex(&lock_word, FUTEX_WAKE | PRIV, 1, NULL, NULL, 0);
}

static void *count(void *arg)
{
    for (long i = 0; i < iterations; i++) {
        flock();
        counter++;
        funlock();
    }
    return arg;
}

static void futex_lock(int n)
{
    pthread_t t[n];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, count, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("futex lock: %d threads x %ld = %ld\n", n, iterations, counter);
}

/* ---- bitsets ---------------------------------------------------------------- */

static atomic_uint bit_word;
static atomic_int returned[2];
static long result[2];

static void *bit_waiter(void *arg)
{
    long i = (long)arg;
    struct timespec rel = {20, 0};
    /* one call: only the wake for this waiter's bit may end it */
    long long deadline = ns(CLOCK_MONOTONIC) + 20000000000LL;
    struct timespec abs = {deadline / 1000000000LL, deadline % 1000000000LL};
    (void)rel;
    result[i] = futex(&bit_word, FUTEX_WAIT_BITSET | PRIV, 0, &abs, NULL, 1u << i);
    atomic_store(&returned[i], 1);
    return NULL;
}

static void pause_ms(long ms)
{
    struct timespec d = {0, ms * 1000000};
    nanosleep(&d, NULL);
}

static void bitsets(void)
{
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, bit_waiter, (void *)i);
    /* a waiter not yet asleep misses a wake: repeat until it has returned */
    while (!atomic_load(&returned[1])) {
        futex(&bit_word, FUTEX_WAKE_BITSET | PRIV, INT_MAX, NULL, NULL, 2);
        pause_ms(5);
    }
    pause_ms(50);
    printf("%s bit 2 wake left the bit 1 waiter asleep\n",
           atomic_load(&returned[0]) ? "FAIL" : "ok");
    while (!atomic_load(&returned[0])) {
        futex(&bit_word, FUTEX_WAKE_BITSET | PRIV, INT_MAX, NULL, NULL, 1);
        pause_ms(5);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("%s bitset waiters woke with 0\n", result[0] == 0 && result[1] == 0 ? "ok" : "FAIL");
}

/* ---- requeue ---------------------------------------------------------------- */

static atomic_uint from_word, to_word;
static atomic_int requeue_done;

static void *requeue_waiter(void *arg)
{
    futex(&from_word, FUTEX_WAIT | PRIV, 0, NULL, NULL, 0);
    atomic_fetch_add(&requeue_done, 1);
    return arg;
}

static void requeue(int n)
{
    pthread_t t[n];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, requeue_waiter, NULL);
    CHECK("cmp_requeue on a changed value EAGAIN",
          futex(&from_word, FUTEX_CMP_REQUEUE | PRIV, 0, (void *)(long)INT_MAX, &to_word, 1), -1,
          EAGAIN);
    /* waiters only ever leave through a wake on to_word: a requeue must
     * have moved them there (a late sleeper is moved by the next round) */
    long moved = 0;
    while (atomic_load(&requeue_done) < n) {
        long r = futex(&from_word, FUTEX_CMP_REQUEUE | PRIV, 0, (void *)(long)INT_MAX, &to_word, 0);
        if (r > 0)
            moved += r;
        futex(&to_word, FUTEX_WAKE | PRIV, 1, NULL, NULL, 0);
        pause_ms(2);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("requeue: %d waiters woken through the second word, %s\n", n,
           moved >= n ? "all counted" : "FAIL count");
    /* FUTEX_REQUEUE wakes some and moves the rest */
    atomic_store(&requeue_done, 0);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, requeue_waiter, NULL);
    while (atomic_load(&requeue_done) < n) {
        futex(&from_word, FUTEX_REQUEUE | PRIV, 1, (void *)(long)INT_MAX, &to_word, 0);
        futex(&to_word, FUTEX_WAKE | PRIV, 1, NULL, NULL, 0);
        pause_ms(2);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("plain requeue: %d waiters done\n", n);
}

int main(int argc, char **argv)
{
    int threads = 16;
    if (argc > 2) {
        threads = atoi(argv[1]);
        iterations = atol(argv[2]);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK("getpid through syscall()", syscall(SYS_getpid), getpid(), 0);
    CHECK("bad syscall ENOSYS", syscall(100000), -1, ENOSYS);
    timeouts();
    futex_lock(threads);
    bitsets();
    requeue(8);
    return 0;
}
