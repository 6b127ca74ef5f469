/* Process-shared objects across fork(): semaphores (sem_init pshared in a
 * MAP_SHARED mapping, and sem_open), an rwlock, a barrier, and a mutex with
 * a condition variable (turn-taking and an exact counter), with wake-ups
 * both ways (parent waits and the child posts or releases, then the
 * reverse).  Only the parent prints; the child reports through shared
 * memory and its exit status.
 *
 * usage: sync_pshared sem|named|rwlock|barrier|cond
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "timed_wait.h"

#define ROUNDS 200

struct shared {
    sem_t there, back;
    pthread_rwlock_t rw;
    pthread_barrier_t barrier;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int turn;
    long counter;
    atomic_int value;
    atomic_int child_errors;
    atomic_int serials;
    atomic_int arrived[64];
};

static struct shared *sh;

/* A timed wait on realtime deadline t, 100 ms ahead when it began at
 * CLOCK_MONOTONIC start, said ETIMEDOUT: early (timed_wait.h)? */
static int ended_early(long long start, const struct timespec *t)
{
    return timed_out_early(start, 100, CLOCK_REALTIME, t);
}

static void map_shared(void)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        exit(2);
    memset(sh, 0, sizeof *sh);
}

static int reap(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- semaphores: ping-pong, the child answering every post ----------- */

static void child_answers(sem_t *there, sem_t *back)
{
    for (int i = 0; i < ROUNDS; i++) {
        if (sem_wait(there) != 0)
            _exit(10);
        atomic_fetch_add(&sh->value, 1);
        sem_post(back);
    }
    /* then the parent waits first: wait for its post after a pause */
    if (sem_wait(there) != 0)
        _exit(11);
    _exit(0);
}

static void ping_pong(const char *name, sem_t *there, sem_t *back)
{
    atomic_store(&sh->value, 0);
    pid_t pid = fork();
    if (pid == 0)
        child_answers(there, back);
    usleep(50000); /* the child is blocked in sem_wait now */
    int late = 0;
    for (int i = 0; i < ROUNDS; i++) {
        sem_post(there);
        if (sem_wait(back) != 0)
            late++;
        if (atomic_load(&sh->value) != i + 1)
            late++;
    }
    /* nobody posts back: a timed wait in the parent times out */
    long long start = now_ns(CLOCK_MONOTONIC); /* before the deadline is read */
    struct timespec t = in_ms(CLOCK_REALTIME, 100);
    int r = sem_timedwait(back, &t);
    int timed_out = r == -1 && errno == ETIMEDOUT && !ended_early(start, &t);
    usleep(50000);
    sem_post(there);
    int status = reap(pid);
    printf("%s: %d round trips, %d wrong, timedwait %s, child status %d\n", name, ROUNDS, late,
           timed_out ? "timed out, not early" : "WRONG", status);
}

static void sem_test(void)
{
    map_shared();
    sem_init(&sh->there, 1, 0);
    sem_init(&sh->back, 1, 0);
    ping_pong("sem_init pshared", &sh->there, &sh->back);
    /* the reverse: the parent waits first, the child posts */
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100000);
        sem_post(&sh->back);
        _exit(0);
    }
    int r = sem_wait(&sh->back);
    printf("parent woken by the child's post: %d, child status %d\n", r, reap(pid));
}

static void named_test(void)
{
    map_shared();
    char there_name[64], back_name[64];
    snprintf(there_name, sizeof there_name, "/fz_sync_pshared_a_%d", (int)getpid());
    snprintf(back_name, sizeof back_name, "/fz_sync_pshared_b_%d", (int)getpid());
    sem_t *there = sem_open(there_name, O_CREAT | O_EXCL, 0600, 0);
    sem_t *back = sem_open(back_name, O_CREAT | O_EXCL, 0600, 0);
    if (there == SEM_FAILED || back == SEM_FAILED) {
        perror("sem_open");
        exit(2);
    }
    sem_unlink(there_name);
    sem_unlink(back_name);
    ping_pong("sem_open", there, back);
    sem_close(there);
    sem_close(back);
}

/* ---- rwlock: each side blocks on the other's write lock -------------- */

static void rwlock_test(void)
{
    map_shared();
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(&sh->rw, &a);
    sem_init(&sh->there, 1, 0);

    pthread_rwlock_wrlock(&sh->rw);
    pid_t pid = fork();
    if (pid == 0) {
        if (pthread_rwlock_tryrdlock(&sh->rw) != EBUSY)
            atomic_fetch_add(&sh->child_errors, 1);
        pthread_rwlock_rdlock(&sh->rw); /* until the parent unlocks */
        if (atomic_load(&sh->value) != 1)
            atomic_fetch_add(&sh->child_errors, 1);
        pthread_rwlock_unlock(&sh->rw);
        pthread_rwlock_wrlock(&sh->rw);
        atomic_store(&sh->value, 2);
        sem_post(&sh->there);
        usleep(200000);
        atomic_store(&sh->value, 3);
        pthread_rwlock_unlock(&sh->rw);
        _exit(0);
    }
    usleep(100000);
    atomic_store(&sh->value, 1);
    pthread_rwlock_unlock(&sh->rw);
    sem_wait(&sh->there); /* the child holds it for writing now */
    int busy = pthread_rwlock_tryrdlock(&sh->rw);
    pthread_rwlock_rdlock(&sh->rw); /* until the child unlocks */
    int seen = atomic_load(&sh->value);
    pthread_rwlock_unlock(&sh->rw);
    struct timespec past = {0, 0};
    int status = reap(pid);
    pthread_rwlock_wrlock(&sh->rw);
    int deadlk = pthread_rwlock_timedrdlock(&sh->rw, &past);
    pthread_rwlock_unlock(&sh->rw);
    printf("rwlock: tryrdlock %s, parent saw %d after its rdlock, child errors %d, status %d, "
           "rdlock by the write owner %s\n",
           busy == EBUSY ? "EBUSY" : "WRONG", seen, atomic_load(&sh->child_errors), status,
           deadlk == EDEADLK ? "EDEADLK" : "WRONG");
}

/* ---- barrier: two processes, many rounds ----------------------------- */

/* child: 1, parent: 0.  Each side is late in turn, so each waits for the
 * other in the barrier. */
static int barrier_rounds(int child)
{
    int early = 0;
    for (int r = 0; r < 64; r++) {
        atomic_fetch_add(&sh->arrived[r], 1);
        if (r % 16 == 0 && (r / 16) % 2 == child)
            usleep(100000);
        int ret = pthread_barrier_wait(&sh->barrier);
        if (ret == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&sh->serials, 1);
        if (atomic_load(&sh->arrived[r]) != 2)
            early++;
    }
    return early;
}

/* Runs beside the parent's barrier waits: with one carrier it needs the
 * waits to leave the carrier (or the monitor to hand it off). */
static atomic_int ticker_stop;

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&ticker_stop))
        usleep(1000);
    return NULL;
}

static void barrier_test(void)
{
    map_shared();
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&sh->barrier, &a, 2);
    pid_t pid = fork();
    if (pid == 0)
        _exit(barrier_rounds(1));
    pthread_t t;
    pthread_create(&t, NULL, ticker, NULL);
    int early = barrier_rounds(0);
    atomic_store(&ticker_stop, 1);
    pthread_join(t, NULL);
    int status = reap(pid);
    printf("barrier: 64 rounds, %d serial threads, early leavers parent %d child %d\n",
           atomic_load(&sh->serials), early, status);
    printf("destroy: %d\n", pthread_barrier_destroy(&sh->barrier));
}

/* ---- mutex and condition variable: turns, then a shared counter ------- */

#define COUNTS 20000

static int take_turns(int me, int rounds)
{
    int errors = 0;
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&sh->mutex);
        while (sh->turn != me)
            if (pthread_cond_wait(&sh->cond, &sh->mutex) != 0)
                errors++;
        sh->turn = !me;
        sh->counter++;
        pthread_cond_broadcast(&sh->cond);
        pthread_mutex_unlock(&sh->mutex);
    }
    return errors;
}

static void count_up(void)
{
    for (int i = 0; i < COUNTS; i++) {
        pthread_mutex_lock(&sh->mutex);
        sh->counter++;
        pthread_mutex_unlock(&sh->mutex);
    }
}

static void cond_test(void)
{
    map_shared();
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->mutex, &ma);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&sh->cond, &ca);

    pid_t pid = fork();
    if (pid == 0)
        _exit(take_turns(1, ROUNDS) ? 10 : 0);
    int errors = take_turns(0, ROUNDS);
    int status = reap(pid);
    printf("cond: %d turns each, counter %ld, errors %d, child status %d\n", ROUNDS, sh->counter,
           errors, status);

    /* the parent waits long (the child signals after 200 ms): it parks */
    sh->turn = 0;
    pid = fork();
    if (pid == 0) {
        usleep(200000);
        pthread_mutex_lock(&sh->mutex);
        sh->turn = 1;
        pthread_cond_signal(&sh->cond);
        pthread_mutex_unlock(&sh->mutex);
        _exit(0);
    }
    pthread_mutex_lock(&sh->mutex);
    while (sh->turn != 1)
        pthread_cond_wait(&sh->cond, &sh->mutex);
    pthread_mutex_unlock(&sh->mutex);
    printf("parent woken by the child's signal, child status %d\n", reap(pid));

    /* a timed wait nobody signals times out, not early, mutex held */
    long long start = now_ns(CLOCK_MONOTONIC); /* before the deadline is read */
    struct timespec t = in_ms(CLOCK_REALTIME, 100);
    pthread_mutex_lock(&sh->mutex);
    int r;
    do /* 0 is a spurious wake-up, which POSIX allows: wait on */
        r = pthread_cond_timedwait(&sh->cond, &sh->mutex, &t);
    while (r == 0);
    int early = ended_early(start, &t);
    int held = pthread_mutex_trylock(&sh->mutex) == EBUSY;
    pthread_mutex_unlock(&sh->mutex);
    printf("timedwait: %s, %s, mutex %s\n", r == ETIMEDOUT ? "ETIMEDOUT" : strerror(r),
           early ? "EARLY" : "not early", held ? "held" : "NOT HELD");

    /* both processes count under the mutex: an exact total */
    sh->counter = 0;
    pid = fork();
    if (pid == 0) {
        count_up();
        _exit(0);
    }
    count_up();
    status = reap(pid);
    printf("mutex: counter %ld of %d, child status %d\n", sh->counter, 2 * COUNTS, status);
}

static void *sleeper(void *arg)
{
    for (;;)
        pause();
    return arg;
}

int main(int argc, char **argv)
{
    alarm(60);
    /* A thread alive throughout, as the programs that share these objects
     * have: fiberized, a program that is one thread -- none created yet,
     * or all joined before a fork, which shrinks the runtime back (sched.c)
     * -- makes real blocking calls on its only OS thread, and
     * sync_waits.bats's check that its waits leave the carrier would have
     * no carrier to leave. */
    pthread_t t;
    if (pthread_create(&t, NULL, sleeper, NULL) != 0 || pthread_detach(t) != 0)
        return 1;
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "sem"))
        sem_test();
    else if (!strcmp(what, "named"))
        named_test();
    else if (!strcmp(what, "rwlock"))
        rwlock_test();
    else if (!strcmp(what, "barrier"))
        barrier_test();
    else if (!strcmp(what, "cond"))
        cond_test();
    else {
        fprintf(stderr, "usage: sync_pshared sem|named|rwlock|barrier|cond\n");
        return 2;
    }
    return 0;
}
