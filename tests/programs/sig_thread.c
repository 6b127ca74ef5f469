// libc: glibc-only (pthread_sigqueue, which musl 1.2.3 lacks, is the subject of part 4 and 9)
/* Signals sent to one thread run on that thread.
 *
 * 1. pthread_kill to a thread spinning in user code: the handler runs on it
 *    (pthread_self and a __thread variable are the target's), and the
 *    target sees it happen.
 * 2. pthread_kill to a thread blocked in read() on a pipe: a handler
 *    without SA_RESTART makes read fail with EINTR; with SA_RESTART the
 *    read goes on and returns the data written later.
 * 3. pthread_kill to a thread waiting for a mutex: the handler runs on it,
 *    and it goes on waiting and gets the mutex once it is unlocked.
 * 4. pthread_sigqueue carries SI_QUEUE and the value, to another thread
 *    and to oneself (the handler has run when the call returns).
 * 5. A thread that blocks the signal: it stays pending on that thread
 *    (sigpending shows it, the handler does not run) and runs when the
 *    thread unblocks it, before pthread_sigmask returns.
 * 6. tgkill and syscall(SYS_tgkill) with the tid the thread got from
 *    gettid(): the handler runs on that thread.
 * 7. pthread_kill to a thread in sigsuspend wakes it (EINTR).
 * 8. A handler that waits (sem_wait) parks only its own thread: others go
 *    on, and it continues once posted.
 * 9. sigwaitinfo in a thread that blocks the signal takes one sent to it
 *    (pthread_sigqueue: its value) -- while it waits, and sent before.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    fflush(stdout);
    if (!ok)
        failures++;
}

static __thread int who; /* each thread's own number */
static pthread_t expected_self;
static atomic_int ran_on_target, ran_wrong, handler_count;
static atomic_int last_code, last_value;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (pthread_equal(pthread_self(), expected_self) && who != 0)
        atomic_fetch_add(&ran_on_target, 1);
    else
        atomic_fetch_add(&ran_wrong, 1);
    atomic_store(&last_code, si->si_code);
    atomic_store(&last_value, si->si_value.sival_int);
    atomic_fetch_add(&handler_count, 1);
    (void)sig;
}

static void install(int sig, void (*h)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
        nap_ms(1);
    return atomic_load(v) >= want;
}

/* ---- 1. spinning target ---------------------------------------------- */

static atomic_int stop_spin, spin_saw, spin_started;

static void *spinner(void *arg)
{
    who = (int)(long)arg;
    atomic_store(&spin_started, 1);
    int seen = atomic_load(&handler_count);
    while (!atomic_load(&stop_spin))
        if (atomic_load(&ran_on_target) && atomic_load(&handler_count) != seen)
            atomic_store(&spin_saw, 1);
    return NULL;
}

static void test_spinning(void)
{
    pthread_t t;
    atomic_store(&ran_on_target, 0);
    pthread_create(&t, NULL, spinner, (void *)1L);
    expected_self = t;
    wait_for(&spin_started, 1);
    nap_ms(5);
    report("pthread_kill to a spinning thread returns 0", pthread_kill(t, SIGUSR1) == 0);
    report("its handler ran on it", wait_for(&ran_on_target, 1));
    for (int i = 0; i < 200 && !atomic_load(&spin_saw); i++)
        nap_ms(1);
    report("the target saw its handler run", atomic_load(&spin_saw));
    atomic_store(&stop_spin, 1);
    pthread_join(t, NULL);
}

/* ---- 2. blocked in read ------------------------------------------------ */

static int pipefd[2];
static atomic_int read_result, read_errno, reader_started;

static void *reader(void *arg)
{
    who = 2;
    (void)arg;
    char buf[8];
    atomic_store(&reader_started, 1);
    ssize_t n = read(pipefd[0], buf, sizeof buf);
    atomic_store(&read_errno, n < 0 ? errno : 0);
    atomic_store(&read_result, (int)n);
    return NULL;
}

static void test_read(int flags, const char *label)
{
    pthread_t t;
    char what[128];
    pipe(pipefd);
    install(SIGUSR1, on_usr1, flags);
    atomic_store(&ran_on_target, 0);
    atomic_store(&reader_started, 0);
    atomic_store(&read_result, -2);
    pthread_create(&t, NULL, reader, NULL);
    expected_self = t;
    wait_for(&reader_started, 1);
    nap_ms(50);
    pthread_kill(t, SIGUSR1);
    snprintf(what, sizeof what, "%s: handler ran on the reader", label);
    report(what, wait_for(&ran_on_target, 1));
    nap_ms(50);
    if (flags & SA_RESTART) {
        snprintf(what, sizeof what, "%s: read still waiting", label);
        report(what, atomic_load(&read_result) == -2);
        write(pipefd[1], "abc", 3);
        pthread_join(t, NULL);
        snprintf(what, sizeof what, "%s: read returns the data", label);
        report(what, atomic_load(&read_result) == 3);
    } else {
        pthread_join(t, NULL);
        snprintf(what, sizeof what, "%s: read fails with EINTR", label);
        report(what, atomic_load(&read_result) == -1 && atomic_load(&read_errno) == EINTR);
    }
    close(pipefd[0]);
    close(pipefd[1]);
    install(SIGUSR1, on_usr1, 0);
}

/* ---- 3. waiting for a mutex ------------------------------------------- */

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static atomic_int locker_started, locker_got;

static void *locker(void *arg)
{
    who = 3;
    (void)arg;
    atomic_store(&locker_started, 1);
    pthread_mutex_lock(&mutex);
    atomic_store(&locker_got, 1);
    pthread_mutex_unlock(&mutex);
    return NULL;
}

static void test_mutex(void)
{
    pthread_t t;
    atomic_store(&ran_on_target, 0);
    pthread_mutex_lock(&mutex);
    pthread_create(&t, NULL, locker, NULL);
    expected_self = t;
    wait_for(&locker_started, 1);
    nap_ms(50);
    pthread_kill(t, SIGUSR1);
    report("mutex waiter: handler ran on it", wait_for(&ran_on_target, 1));
    nap_ms(30);
    report("mutex waiter: still waiting after its handler", !atomic_load(&locker_got));
    pthread_mutex_unlock(&mutex);
    pthread_join(t, NULL);
    report("mutex waiter: got the mutex", atomic_load(&locker_got));
}

/* ---- 4. pthread_sigqueue ------------------------------------------------ */

static atomic_int go, idler_started;

static void *idler(void *arg)
{
    who = (int)(long)arg;
    atomic_store(&idler_started, 1);
    while (!atomic_load(&go))
        nap_ms(1);
    return NULL;
}

static void test_sigqueue(void)
{
    pthread_t t;
    atomic_store(&go, 0);
    atomic_store(&ran_on_target, 0);
    pthread_create(&t, NULL, idler, (void *)4L);
    expected_self = t;
    wait_for(&idler_started, 1);
    union sigval v = {.sival_int = 4242};
    report("pthread_sigqueue returns 0", pthread_sigqueue(t, SIGUSR1, v) == 0);
    report("pthread_sigqueue: ran on the target", wait_for(&ran_on_target, 1));
    report("pthread_sigqueue: SI_QUEUE and the value",
           atomic_load(&last_code) == SI_QUEUE && atomic_load(&last_value) == 4242);
    atomic_store(&go, 1);
    pthread_join(t, NULL);

    who = 99;
    expected_self = pthread_self();
    atomic_store(&ran_on_target, 0);
    v.sival_int = 77;
    int r = pthread_sigqueue(pthread_self(), SIGUSR1, v);
    report("pthread_sigqueue to oneself: ran before it returned",
           r == 0 && atomic_load(&ran_on_target) == 1 && atomic_load(&last_value) == 77);
    atomic_store(&ran_on_target, 0);
    r = pthread_kill(pthread_self(), SIGUSR1);
    report("pthread_kill to oneself: ran before it returned, SI_TKILL",
           r == 0 && atomic_load(&ran_on_target) == 1 && atomic_load(&last_code) == SI_TKILL);
    who = 0;
}

/* ---- 5. blocked, pending, unblocked ------------------------------------ */

static atomic_int blocker_phase, blocker_pending, blocker_ran_early, blocker_ran_after;

static void *blocker(void *arg)
{
    who = 5;
    (void)arg;
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    atomic_store(&blocker_phase, 1);
    while (atomic_load(&blocker_phase) != 2)
        nap_ms(1);
    nap_ms(20);
    sigpending(&pending);
    atomic_store(&blocker_pending, sigismember(&pending, SIGUSR1));
    atomic_store(&blocker_ran_early, atomic_load(&ran_on_target));
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    atomic_store(&blocker_ran_after, atomic_load(&ran_on_target));
    return NULL;
}

static void test_blocked(void)
{
    pthread_t t;
    atomic_store(&ran_on_target, 0);
    pthread_create(&t, NULL, blocker, NULL);
    expected_self = t;
    while (atomic_load(&blocker_phase) != 1)
        nap_ms(1);
    pthread_kill(t, SIGUSR1);
    atomic_store(&blocker_phase, 2);
    pthread_join(t, NULL);
    report("blocked: pending on the thread (sigpending)", atomic_load(&blocker_pending) == 1);
    report("blocked: handler did not run while blocked", atomic_load(&blocker_ran_early) == 0);
    report("blocked: ran when unblocked, before pthread_sigmask returned",
           atomic_load(&blocker_ran_after) == 1);
    sigset_t pending;
    sigpending(&pending);
    report("blocked: not pending on main", !sigismember(&pending, SIGUSR1));
}

/* ---- 6. tgkill with gettid() -------------------------------------------- */

static atomic_int target_tid;

static void *tid_reporter(void *arg)
{
    who = 6;
    (void)arg;
    atomic_store(&target_tid, gettid());
    while (!atomic_load(&go))
        nap_ms(1);
    return NULL;
}

static void test_tgkill(void)
{
    pthread_t t;
    atomic_store(&go, 0);
    atomic_store(&target_tid, 0);
    atomic_store(&ran_on_target, 0);
    pthread_create(&t, NULL, tid_reporter, NULL);
    expected_self = t;
    while (!atomic_load(&target_tid))
        nap_ms(1);
    report("tgkill(getpid(), tid) returns 0",
           tgkill(getpid(), atomic_load(&target_tid), SIGUSR1) == 0);
    report("tgkill: ran on the target", wait_for(&ran_on_target, 1));
    report("tgkill: SI_TKILL", atomic_load(&last_code) == SI_TKILL);
    long r = syscall(SYS_tgkill, getpid(), atomic_load(&target_tid), SIGUSR1);
    report("syscall(SYS_tgkill): ran on the target", r == 0 && wait_for(&ran_on_target, 2));
    r = syscall(SYS_tkill, atomic_load(&target_tid), SIGUSR1);
    report("syscall(SYS_tkill): ran on the target", r == 0 && wait_for(&ran_on_target, 3));
    report("signal 0 probes a live thread", pthread_kill(t, 0) == 0);
    atomic_store(&go, 1);
    pthread_join(t, NULL);
    report("no handler ran on a wrong thread", atomic_load(&ran_wrong) == 0);
}

/* ---- 7. sigsuspend ------------------------------------------------------- */

static atomic_int suspend_result, suspend_started;

static void *suspender(void *arg)
{
    who = 7;
    (void)arg;
    sigset_t set, none;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    atomic_store(&suspend_started, 1);
    sigemptyset(&none);
    int r = sigsuspend(&none);
    atomic_store(&suspend_result, r == -1 && errno == EINTR);
    return NULL;
}

static void test_sigsuspend(void)
{
    pthread_t t;
    atomic_store(&ran_on_target, 0);
    pthread_create(&t, NULL, suspender, NULL);
    expected_self = t;
    while (!atomic_load(&suspend_started))
        nap_ms(1);
    nap_ms(30);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    report("sigsuspend: woken by pthread_kill, handler on it, EINTR",
           atomic_load(&ran_on_target) == 1 && atomic_load(&suspend_result) == 1);
}

/* ---- 8. a handler that waits ------------------------------------------ */

static sem_t resume_sem;
static atomic_int parked_in_handler, other_progress, handler_done;

static void on_usr2(int sig)
{
    (void)sig;
    atomic_store(&parked_in_handler, 1);
    while (sem_wait(&resume_sem) != 0)
        ;
    atomic_store(&handler_done, 1);
}

static void *busy(void *arg)
{
    who = 8;
    (void)arg;
    while (!atomic_load(&go))
        nap_ms(1);
    return NULL;
}

static void *other(void *arg)
{
    (void)arg;
    while (!atomic_load(&go)) {
        atomic_fetch_add(&other_progress, 1);
        nap_ms(1);
    }
    return NULL;
}

static void test_waiting_handler(void)
{
    pthread_t t, o;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sem_init(&resume_sem, 0, 0);
    atomic_store(&go, 0);
    pthread_create(&t, NULL, busy, NULL);
    pthread_create(&o, NULL, other, NULL);
    nap_ms(10);
    pthread_kill(t, SIGUSR2);
    report("waiting handler: parked in its handler", wait_for(&parked_in_handler, 1));
    int before = atomic_load(&other_progress);
    for (int i = 0; i < 2000 && atomic_load(&other_progress) <= before + 5; i++)
        nap_ms(1);
    report("waiting handler: other threads go on", atomic_load(&other_progress) > before + 5);
    report("waiting handler: still parked", !atomic_load(&handler_done));
    sem_post(&resume_sem);
    report("waiting handler: continues once posted", wait_for(&handler_done, 1));
    atomic_store(&go, 1);
    pthread_join(t, NULL);
    pthread_join(o, NULL);
}

/* ---- 9. sigwait ------------------------------------------------------- */

static atomic_int sw_started, sw_sig[2], sw_value[2];

static void *sigwaiter(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    atomic_store(&sw_started, 1);
    for (int i = 0; i < 2; i++) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        atomic_store(&sw_sig[i], sig);
        atomic_store(&sw_value[i], si.si_value.sival_int);
        if (i == 0)
            while (atomic_load(&sw_started) != 2)
                nap_ms(1);
    }
    return NULL;
}

static void test_sigwait(void)
{
    pthread_t t;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* main must not take it either */
    pthread_create(&t, NULL, sigwaiter, NULL);
    while (!atomic_load(&sw_started))
        nap_ms(1);
    nap_ms(50); /* in sigwaitinfo by now */
    union sigval v = {.sival_int = 31};
    pthread_sigqueue(t, SIGRTMIN + 1, v);
    wait_for(&sw_sig[0], 1);
    report("sigwaitinfo: takes a signal sent to its thread while waiting",
           atomic_load(&sw_sig[0]) == SIGRTMIN + 1 && atomic_load(&sw_value[0]) == 31);
    v.sival_int = 32;
    pthread_sigqueue(t, SIGRTMIN + 1, v);
    atomic_store(&sw_started, 2);
    pthread_join(t, NULL);
    report("sigwaitinfo: takes one sent before it waited",
           atomic_load(&sw_sig[1]) == SIGRTMIN + 1 && atomic_load(&sw_value[1]) == 32);
    sigset_t pending;
    sigpending(&pending);
    report("sigwaitinfo: nothing left pending on main", !sigismember(&pending, SIGRTMIN + 1));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    install(SIGUSR1, on_usr1, 0);
    test_spinning();
    test_read(0, "read, no SA_RESTART");
    test_read(SA_RESTART, "read, SA_RESTART");
    test_mutex();
    test_sigqueue();
    test_blocked();
    test_tgkill();
    test_sigsuspend();
    test_waiting_handler();
    test_sigwait();
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
