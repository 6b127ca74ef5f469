/* Thread ids: what gettid() says about each thread.
 *
 * The main thread's tid is the pid; every other thread has its own, unique
 * among all threads the process ever had, never the pid, the same from
 * gettid() and syscall(SYS_gettid), and stable while the thread sleeps,
 * yields and blocks (under fiberize: while it migrates).  A thread's tid
 * reaches it through tgkill.  A tid nobody has fails with ESRCH.
 * pthread_getattr_np works on the main thread and on others, and the stack
 * it reports holds the caller's locals.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "libc_compat.h"

#define THREADS 16
#define ROUNDS 3

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static pid_t tids[ROUNDS * THREADS];
static atomic_int unstable, mismatch, is_pid, attr_bad;
static atomic_int got_signal_on[ROUNDS * THREADS];
static __thread int my_index = -1;

static void on_usr1(int sig)
{
    (void)sig;
    if (my_index >= 0)
        atomic_fetch_add(&got_signal_on[my_index], 1);
}

static int stack_holds(void *p)
{
    pthread_attr_t attr;
    void *base;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 0;
    pthread_attr_getstack(&attr, &base, &size);
    pthread_attr_destroy(&attr);
    return (char *)p >= (char *)base && (char *)p < (char *)base + size;
}

static atomic_int ready, release;

static void *worker(void *arg)
{
    int i = (int)(long)arg;
    my_index = i;
    pid_t t = gettid();
    tids[i] = t;
    if ((pid_t)syscall(SYS_gettid) != t)
        atomic_fetch_add(&mismatch, 1);
    if (t == getpid())
        atomic_fetch_add(&is_pid, 1);
    int local;
    if (!stack_holds(&local))
        atomic_fetch_add(&attr_bad, 1);
    for (int k = 0; k < 20; k++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
        sched_yield();
        if (gettid() != t || syscall(SYS_gettid) != t)
            atomic_fetch_add(&unstable, 1);
    }
    atomic_fetch_add(&ready, 1);
    while (!atomic_load(&release)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(void)
{
    signal(SIGUSR1, on_usr1);
    report("main: gettid() == getpid()", gettid() == getpid());
    report("main: syscall(SYS_gettid) == getpid()", syscall(SYS_gettid) == getpid());
    int local;
    report("main: pthread_getattr_np works, its stack holds main's locals", stack_holds(&local));

    for (int r = 0; r < ROUNDS; r++) {
        pthread_t th[THREADS];
        atomic_store(&ready, 0);
        atomic_store(&release, 0);
        for (int i = 0; i < THREADS; i++)
            pthread_create(&th[i], NULL, worker, (void *)(long)(r * THREADS + i));
        while (atomic_load(&ready) < THREADS) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        /* each thread's tid reaches that thread */
        for (int i = 0; i < THREADS; i++)
            syscall(SYS_tgkill, getpid(), tids[r * THREADS + i], SIGUSR1);
        for (int w = 0; w < 2000; w++) {
            int all = 1;
            for (int i = 0; i < THREADS; i++)
                all &= atomic_load(&got_signal_on[r * THREADS + i]) == 1;
            if (all)
                break;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        atomic_store(&release, 1);
        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
    }
    int dup = 0;
    for (int i = 0; i < ROUNDS * THREADS; i++)
        for (int j = i + 1; j < ROUNDS * THREADS; j++)
            if (tids[i] == tids[j])
                dup++;
    int misdelivered = 0;
    for (int i = 0; i < ROUNDS * THREADS; i++)
        if (atomic_load(&got_signal_on[i]) != 1)
            misdelivered++;
    report("threads: gettid() == syscall(SYS_gettid)", !atomic_load(&mismatch));
    report("threads: no tid equals the pid", !atomic_load(&is_pid));
    report("threads: tids unique over the process's life", dup == 0);
    report("threads: tid stable across sleeps and yields", !atomic_load(&unstable));
    report("threads: pthread_getattr_np stack holds their locals", !atomic_load(&attr_bad));
    report("tgkill(pid, tid) reaches exactly that thread", misdelivered == 0);
    errno = 0;
    long r = syscall(SYS_tgkill, getpid(), 0x3ffffff0, SIGUSR1);
    report("tgkill to a tid nobody has: ESRCH", r == -1 && errno == ESRCH);
    r = tgkill(getpid(), 0x3ffffff0, 0);
    report("tgkill(.., 0) probe of a tid nobody has: ESRCH", r == -1 && errno == ESRCH);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
