/* Unnamed in-process semaphores: exact counts as a lock and as a queue,
 * trywait/timedwait results (timeouts never early), EOVERFLOW, EINTR from
 * a handler without SA_RESTART (and a restart with it), and a thread
 * blocked in sem_wait leaving its carrier to the others.
 *
 * usage: sync_sem counter|queue|timed|errors|eintr|foreign|handler|park
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "libc_compat.h"
#include "timed_wait.h"

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg))
        exit(2);
    return t;
}

/* "r errno" of a sem call, printed as the name of the result */
static void result(const char *what, int r, int want_errno)
{
    int got = r == 0 ? 0 : errno;
    printf("%s: %s\n", what, got == want_errno ? "ok" : "WRONG");
    if (got != want_errno)
        fprintf(stderr, "%s: r=%d errno %d (%s), want %d\n", what, r, got, strerror(got),
                want_errno);
}

/* ---- counter: a semaphore as a lock ---------------------------------- */

#define THREADS 8
#define ITERS 20000
static sem_t lock_sem;
static long counter;

static void *count_up(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        sem_wait(&lock_sem);
        long v = counter;
        if (i % 512 == 0)
            sched_yield();
        counter = v + 1;
        sem_post(&lock_sem);
    }
    return NULL;
}

static void counter_test(void)
{
    sem_init(&lock_sem, 0, 1);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = spawn(count_up, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    int v;
    sem_getvalue(&lock_sem, &v);
    printf("counter %ld (want %d), value after %d\n", counter, THREADS * ITERS, v);
    sem_destroy(&lock_sem);
}

/* ---- queue: producers post items, consumers wait for them ------------ */

#define ITEMS 40000
static sem_t items, slots;
static long ring[64];
static atomic_uint put_at, take_at;
static atomic_long consumed_sum;
static pthread_spinlock_t ring_lock;

static void *produce(void *arg)
{
    long base = (long)arg;
    for (long i = 0; i < ITEMS / 4; i++) {
        sem_wait(&slots);
        pthread_spin_lock(&ring_lock);
        ring[atomic_fetch_add(&put_at, 1) % 64] = base + i;
        pthread_spin_unlock(&ring_lock);
        sem_post(&items);
    }
    return NULL;
}

static void *consume(void *arg)
{
    (void)arg;
    for (long i = 0; i < ITEMS / 4; i++) {
        sem_wait(&items);
        pthread_spin_lock(&ring_lock);
        long v = ring[atomic_fetch_add(&take_at, 1) % 64];
        pthread_spin_unlock(&ring_lock);
        sem_post(&slots);
        atomic_fetch_add(&consumed_sum, v);
    }
    return NULL;
}

static void queue_test(void)
{
    sem_init(&items, 0, 0);
    sem_init(&slots, 0, 64);
    pthread_spin_init(&ring_lock, PTHREAD_PROCESS_PRIVATE);
    pthread_t t[8];
    for (long i = 0; i < 4; i++)
        t[i] = spawn(produce, (void *)(i * 1000000));
    for (int i = 4; i < 8; i++)
        t[i] = spawn(consume, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    long want = 0;
    for (long p = 0; p < 4; p++)
        for (long i = 0; i < ITEMS / 4; i++)
            want += p * 1000000 + i;
    int a, b;
    sem_getvalue(&items, &a);
    sem_getvalue(&slots, &b);
    printf("consumed sum %s, items %d, slots %d\n",
           atomic_load(&consumed_sum) == want ? "exact" : "WRONG", a, b);
}

/* ---- timed waiters giving up beside untimed ones --------------------- */

/* Waiters with 100 µs timeouts that keep expiring compete with untimed
 * ones: a post lost to a waiter that gave up would leave an untimed waiter
 * asleep for good (the alarm ends the run), and no token may be lost or
 * made up.  Timed waiters take at most TIMED_CAP tokens, so the untimed
 * ones always get theirs. */
#define UNTIMED_EACH 10000
#define TIMED_CAP 20000
#define POSTED (4 * UNTIMED_EACH + TIMED_CAP)
static sem_t tokens;
static atomic_int timed_taken, stop_timed;

static void *untimed_taker(void *arg)
{
    (void)arg;
    for (int i = 0; i < UNTIMED_EACH; i++)
        if (sem_wait(&tokens) != 0)
            exit(5);
    return NULL;
}

static void *timed_taker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_timed)) {
        struct timespec t = in_ms(CLOCK_REALTIME, 0);
        t.tv_nsec += 100000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000;
        }
        if (sem_timedwait(&tokens, &t) != 0) {
            if (errno != ETIMEDOUT)
                exit(6);
            continue;
        }
        if (atomic_fetch_add(&timed_taken, 1) >= TIMED_CAP) {
            atomic_fetch_sub(&timed_taken, 1);
            sem_post(&tokens);
            break;
        }
    }
    return NULL;
}

static void *poster(void *arg)
{
    (void)arg;
    for (int i = 0; i < POSTED / 2; i++) {
        sem_post(&tokens);
        if (i % 128 == 0)
            usleep(100);
    }
    return NULL;
}

static void timed_test(void)
{
    sem_init(&tokens, 0, 0);
    pthread_t untimed[4], timed[4], posters[2];
    for (int i = 0; i < 4; i++) {
        untimed[i] = spawn(untimed_taker, NULL);
        timed[i] = spawn(timed_taker, NULL);
    }
    for (int i = 0; i < 2; i++)
        posters[i] = spawn(poster, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(posters[i], NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(untimed[i], NULL);
    atomic_store(&stop_timed, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(timed[i], NULL);
    int left = 0;
    while (sem_trywait(&tokens) == 0)
        left++;
    fprintf(stderr, "timed waiters took %d\n", atomic_load(&timed_taken));
    printf("tokens: posted %d, taken and left add up: %s\n", POSTED,
           4 * UNTIMED_EACH + atomic_load(&timed_taken) + left == POSTED ? "yes" : "NO");
}

/* ---- errors and timeouts --------------------------------------------- */

/* A wait that should have timed out: did it, and not early (timed_wait.h)? */
static void timed_out_not_early(const char *what, int r, long long start, clockid_t clock,
                                const struct timespec *deadline, long ms)
{
    int e = errno;
    long long took = now_ns(CLOCK_MONOTONIC) - start;
    int early = timed_out_early(start, ms, clock, deadline);
    printf("%s: %s\n", what,
           r != -1 || e != ETIMEDOUT    ? "WRONG result"
           : early                      ? "EARLY"
           : took > ms * 1000000LL * 50 ? "far too late"
                                        : "ETIMEDOUT, not early");
    if (r != -1 || early)
        fprintf(stderr, "%s: %d errno %d after %lld ns\n", what, r, e, took);
}

static sem_t later_sem;

static void *post_after_100ms(void *arg)
{
    (void)arg;
    usleep(100000);
    sem_post(&later_sem);
    return NULL;
}

static void errors_test(void)
{
    sem_t s;
    struct timespec bad = {0, 1000000000}, neg = {0, -1};
    sem_init(&s, 0, 0);
    result("trywait on 0", sem_trywait(&s), EAGAIN);
    sem_post(&s);
    int v = -1;
    sem_getvalue(&s, &v);
    printf("value after a post: %d\n", v);
    if (LIBC_CHECKS_TIME_FIRST)
        result("timedwait bad nsec, value 1", sem_timedwait(&s, &bad), EINVAL);
    result("clockwait CPU clock, value 1",
           sem_clockwait(&s, CLOCK_PROCESS_CPUTIME_ID, &(struct timespec){0, 0}), EINVAL);
    result("trywait on 1", sem_trywait(&s), 0);
    result("timedwait nsec -1, value 0", sem_timedwait(&s, &neg), EINVAL);

    long long start = now_ns(CLOCK_MONOTONIC);
    struct timespec t = in_ms(CLOCK_REALTIME, 200);
    timed_out_not_early("timedwait 200ms", sem_timedwait(&s, &t), start, CLOCK_REALTIME, &t, 200);
    start = now_ns(CLOCK_MONOTONIC);
    t = in_ms(CLOCK_MONOTONIC, 150);
    timed_out_not_early("clockwait MONOTONIC 150ms", sem_clockwait(&s, CLOCK_MONOTONIC, &t), start,
                        CLOCK_MONOTONIC, &t, 150);
    result("timedwait in the past", sem_timedwait(&s, &(struct timespec){0, 0}), ETIMEDOUT);
    result("clockwait negative sec", sem_clockwait(&s, CLOCK_MONOTONIC, &(struct timespec){-5, 0}),
           ETIMEDOUT);
    sem_post(&s);
    result("timedwait in the past, value 1", sem_timedwait(&s, &(struct timespec){0, 0}), 0);

    sem_init(&later_sem, 0, 0);
    pthread_t p = spawn(post_after_100ms, NULL);
    t = in_ms(CLOCK_REALTIME, 10000);
    result("timedwait posted in time", sem_timedwait(&later_sem, &t), 0);
    pthread_join(p, NULL);

    sem_t full;
    sem_init(&full, 0, SEM_VALUE_MAX);
    result("post at SEM_VALUE_MAX", sem_post(&full), EOVERFLOW);
    sem_getvalue(&full, &v);
    printf("value stays %s\n", v == SEM_VALUE_MAX ? "SEM_VALUE_MAX" : "WRONG");
    result("wait at SEM_VALUE_MAX", sem_wait(&full), 0);
    result("post again", sem_post(&full), 0);
    errno = 1234;
    sem_post(&s);
    sem_wait(&s);
    printf("errno untouched by success: %s\n", errno == 1234 ? "yes" : "no");
}

/* ---- EINTR ------------------------------------------------------------ */

static sem_t intr_sem;
static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    handled++;
}

static void *post_after_400ms(void *arg)
{
    (void)arg;
    usleep(400000);
    sem_post(&intr_sem);
    return NULL;
}

static void arm_timer_ms(long ms)
{
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void eintr_test(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sem_init(&intr_sem, 0, 0);
    arm_timer_ms(100);
    int r = sem_wait(&intr_sem);
    result("sem_wait, handler without SA_RESTART", r, EINTR);
    arm_timer_ms(100);
    struct timespec t = in_ms(CLOCK_REALTIME, 5000);
    r = sem_timedwait(&intr_sem, &t);
    result("sem_timedwait, handler without SA_RESTART", r, EINTR);

    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    pthread_t p = spawn(post_after_400ms, NULL);
    arm_timer_ms(100);
    r = sem_wait(&intr_sem);
    result("sem_wait, handler with SA_RESTART", r, 0);
    pthread_join(p, NULL);
    printf("handlers ran: %d\n", (int)handled);
}

/* ---- sem_post from a signal handler (async-signal-safe) -------------- */

static sem_t handler_sem;

static void post_from_handler(int sig)
{
    (void)sig;
    sem_post(&handler_sem);
}

static void handler_test(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = post_from_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    sem_init(&handler_sem, 0, 0);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    int got = 0;
    while (got < 20000)
        if (sem_wait(&handler_sem) == 0)
            got++;
    it = (struct itimerval){{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    printf("woken by %d posts from a signal handler\n", got);
}

/* ---- park: a thread blocked in sem_wait leaves its carrier ----------- */

static sem_t park_sem;
static atomic_int other_steps;

static void *blocked_waiter(void *arg)
{
    (void)arg;
    sem_wait(&park_sem);
    return NULL;
}

static void *works_then_posts(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        usleep(1000);
        atomic_fetch_add(&other_steps, 1);
    }
    sem_post(&park_sem);
    return NULL;
}

static void park_test(void)
{
    sem_init(&park_sem, 0, 0);
    pthread_t w = spawn(blocked_waiter, NULL);
    usleep(50000);
    pthread_t o = spawn(works_then_posts, NULL);
    pthread_join(o, NULL);
    pthread_join(w, NULL);
    printf("another thread ran %d steps, then woke the waiter\n", atomic_load(&other_steps));
}

/* ---- a thread that is not a fiber, interrupted in sem_wait ------------ *
 * glibc's timer_create(SIGEV_THREAD) runs the callback on a thread of its
 * own making, which fiberize does not see created: an OS thread that waits
 * in the kernel.  pthread_kill with a handler without SA_RESTART ends its
 * sem_wait with EINTR; with SA_RESTART glibc's untimed wait goes on. */

static sem_t foreign_sem, foreign_ready;
static pthread_t foreign_thread;
static int foreign_r[2], foreign_errno[2];
static atomic_int foreign_round;

static void on_usr1(int sig)
{
    (void)sig;
}

static void in_timer_thread(union sigval v)
{
    (void)v;
    foreign_thread = pthread_self();
    int round = atomic_load(&foreign_round);
    /* glibc starts the callback with signals blocked: let SIGUSR1 in */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    sem_post(&foreign_ready);
    errno = 0;
    foreign_r[round] = sem_wait(&foreign_sem);
    foreign_errno[round] = errno;
    sem_post(&foreign_ready);
}

static void foreign_test(void)
{
    sem_init(&foreign_sem, 0, 0);
    sem_init(&foreign_ready, 0, 0);
    for (int round = 0; round < 2; round++) {
        struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = round ? SA_RESTART : 0};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        atomic_store(&foreign_round, round);
        timer_t timer;
        struct sigevent ev = {.sigev_notify = SIGEV_THREAD,
                              .sigev_notify_function = in_timer_thread};
        struct itimerspec when = {.it_value = {0, 1000000}};
        if (timer_create(CLOCK_MONOTONIC, &ev, &timer) || timer_settime(timer, 0, &when, NULL)) {
            perror("timer");
            exit(2);
        }
        sem_wait(&foreign_ready);
        usleep(100000); /* it is in sem_wait now */
        pthread_kill(foreign_thread, SIGUSR1);
        struct timespec limit;
        clock_gettime(CLOCK_REALTIME, &limit);
        limit.tv_nsec += 300000000;
        if (limit.tv_nsec >= 1000000000) {
            limit.tv_sec++;
            limit.tv_nsec -= 1000000000;
        }
        int ended = sem_timedwait(&foreign_ready, &limit) == 0;
        if (!ended) {
            sem_post(&foreign_sem); /* restarted: let it have a unit */
            sem_wait(&foreign_ready);
        }
        printf("non-fiber thread's sem_wait, handler %s SA_RESTART: %s, then %s\n",
               round ? "with" : "without", ended ? "ended" : "went on",
               foreign_r[round] == 0 ? "0" : strerror(foreign_errno[round]));
        timer_delete(timer);
    }
}

int main(int argc, char **argv)
{
    alarm(60);
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "counter"))
        counter_test();
    else if (!strcmp(what, "queue"))
        queue_test();
    else if (!strcmp(what, "errors"))
        errors_test();
    else if (!strcmp(what, "eintr"))
        eintr_test();
    else if (!strcmp(what, "park"))
        park_test();
    else if (!strcmp(what, "timed"))
        timed_test();
    else if (!strcmp(what, "foreign"))
        foreign_test();
    else if (!strcmp(what, "handler"))
        handler_test();
    else {
        fprintf(stderr, "usage: sync_sem counter|queue|timed|errors|eintr|foreign|handler|park\n");
        return 2;
    }
    return 0;
}
