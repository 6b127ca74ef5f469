// sleeps: every sleep call sleeps at least as long as asked (measured on
// CLOCK_MONOTONIC or the deadline's own clock), reports EINTR and the time
// left when a signal cuts it short, rejects bad arguments as glibc does, and
// 200 threads sleeping at once take about as long as one.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define NSLEEPERS 200

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono(void)
{
    return now_ns(CLOCK_MONOTONIC);
}

static struct timespec ts_of(int64_t ns)
{
    return (struct timespec){ns / 1000000000LL, ns % 1000000000LL};
}

static int64_t ns_of(struct timespec ts)
{
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void plain_sleeps(void)
{
    int64_t t0 = mono();
    unsigned left = sleep(1);
    report("sleep(1) returns 0 after >= 1 s", left == 0 && mono() - t0 >= 1000 * MS);
    t0 = mono();
    int r = usleep(20000);
    report("usleep(20000) returns 0 after >= 20 ms", r == 0 && mono() - t0 >= 20 * MS);
    report("usleep(0) returns 0", usleep(0) == 0);
    struct timespec req = ts_of(30 * MS), rem = {0, 0}, zero = {0, 0};
    t0 = mono();
    r = nanosleep(&req, &rem);
    report("nanosleep(30 ms) returns 0 after >= 30 ms", r == 0 && mono() - t0 >= 30 * MS);
    report("nanosleep(0) returns 0", nanosleep(&zero, NULL) == 0);
    report("sched_yield returns 0", sched_yield() == 0);
    req = ts_of(20 * MS);
    t0 = mono();
    r = thrd_sleep(&req, &rem);
    report("thrd_sleep(20 ms) returns 0 after >= 20 ms", r == 0 && mono() - t0 >= 20 * MS);
}

static void bad_nanosleeps(void)
{
    struct timespec bad[] = {{0, 1000000000L}, {0, -1}, {-1, 0}};
    const char *what[] = {"nanosleep tv_nsec = 1000000000: -1/EINVAL",
                          "nanosleep tv_nsec = -1: -1/EINVAL", "nanosleep tv_sec = -1: -1/EINVAL"};
    for (int i = 0; i < 3; i++) {
        errno = 0;
        int r = nanosleep(&bad[i], NULL);
        report(what[i], r == -1 && errno == EINVAL);
    }
}

// clock_nanosleep for 20 ms on CLOCK, relative or absolute.
static void clock_sleep(clockid_t clock, const char *name)
{
    char what[100];
    struct timespec req = ts_of(20 * MS);
    int64_t t0 = mono();
    int r = clock_nanosleep(clock, 0, &req, NULL);
    snprintf(what, sizeof what, "clock_nanosleep %s relative 20 ms: 0 after >= 20 ms", name);
    report(what, r == 0 && mono() - t0 >= 20 * MS);

    int64_t deadline = now_ns(clock) + 20 * MS;
    req = ts_of(deadline);
    r = clock_nanosleep(clock, TIMER_ABSTIME, &req, NULL);
    snprintf(what, sizeof what, "clock_nanosleep %s TIMER_ABSTIME: 0, not before the deadline",
             name);
    report(what, r == 0 && now_ns(clock) >= deadline);

    req = ts_of(now_ns(clock) - 1000 * MS);
    t0 = mono();
    r = clock_nanosleep(clock, TIMER_ABSTIME, &req, NULL);
    snprintf(what, sizeof what, "clock_nanosleep %s past deadline: 0 at once", name);
    report(what, r == 0 && mono() - t0 < 500 * MS);
}

static void bad_clock_sleeps(void)
{
    struct timespec req = ts_of(10 * MS), bad = {0, 1000000000L};
    int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL);
    report("clock_nanosleep tv_nsec = 1000000000: returns EINVAL (not -1)", r == EINVAL);
    bad = (struct timespec){-1, 0};
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL);
    report("clock_nanosleep tv_sec = -1: returns EINVAL", r == EINVAL);
    r = clock_nanosleep((clockid_t)1000, 0, &req, NULL);
    report("clock_nanosleep on an invalid clock: returns EINVAL", r == EINVAL);
    r = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL);
    report("clock_nanosleep on CLOCK_THREAD_CPUTIME_ID: returns EINVAL", r == EINVAL);
}

static atomic_int spin_stop;

// Burns CPU (politely) so the process CPU clock advances.
static void *spinner(void *arg)
{
    int64_t give_up = mono() + 10000 * MS;
    while (!atomic_load(&spin_stop) && mono() < give_up)
        sched_yield();
    return NULL;
}

// Natively this waits for 50 ms of process CPU time, which the spinner
// provides; a runtime may instead sleep 50 ms of real time.  Either is fine.
static void cputime_sleep(void)
{
    pthread_t tid;
    struct timespec req = ts_of(50 * MS);
    if (pthread_create(&tid, NULL, spinner, NULL) != 0) {
        report("clock_nanosleep CLOCK_PROCESS_CPUTIME_ID: spinner thread", 0);
        return;
    }
    int64_t t0 = mono(), c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    int r = clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL);
    int long_enough = mono() - t0 >= 50 * MS || now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0 >= 50 * MS;
    atomic_store(&spin_stop, 1);
    pthread_join(tid, NULL);
    report("clock_nanosleep CLOCK_PROCESS_CPUTIME_ID 50 ms: 0, not early", r == 0 && long_enough);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    alarms++;
}

// A 100 ms one-shot SIGALRM, handler installed without SA_RESTART.
static void arm_interrupt(void)
{
    struct itimerval it = {{0, 0}, {0, 100000}};
    alarms = 0;
    setitimer(ITIMER_REAL, &it, NULL);
}

// rem is plausible: positive, at most what was asked, at least what was
// asked minus the time that passed.
static int plausible(struct timespec rem, int64_t req, int64_t elapsed)
{
    int64_t left = ns_of(rem);
    return rem.tv_nsec >= 0 && rem.tv_nsec < 1000000000L && left > 0 && left <= req &&
           left >= req - elapsed - 1 * MS;
}

static void interrupted_sleeps(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART
    sigaction(SIGALRM, &sa, NULL);

    struct timespec req = ts_of(2000 * MS), rem = {0, 0};
    arm_interrupt();
    int64_t t0 = mono();
    errno = 0;
    int r = nanosleep(&req, &rem);
    int64_t elapsed = mono() - t0;
    report("nanosleep cut short by SIGALRM: -1/EINTR", r == -1 && errno == EINTR && alarms == 1);
    report("nanosleep cut short: rem is plausible", plausible(rem, 2000 * MS, elapsed));

    rem = (struct timespec){0, 0};
    arm_interrupt();
    t0 = mono();
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    elapsed = mono() - t0;
    report("clock_nanosleep cut short by SIGALRM: returns EINTR", r == EINTR && alarms == 1);
    report("clock_nanosleep cut short: rem is plausible", plausible(rem, 2000 * MS, elapsed));

    signal(SIGALRM, SIG_DFL);
    alarm(60); // setitimer replaced the watchdog
}

static atomic_int early_wakeups;

static void *ten_naps(void *arg)
{
    struct timespec req = ts_of(10 * MS);
    for (int i = 0; i < 10; i++) {
        int64_t t0 = mono();
        if (nanosleep(&req, NULL) != 0 || mono() - t0 < 10 * MS)
            atomic_fetch_add(&early_wakeups, 1);
    }
    return NULL;
}

static void concurrent_sleeps(void)
{
    pthread_t tids[NSLEEPERS];
    int64_t t0 = mono();
    for (int i = 0; i < NSLEEPERS; i++) {
        int err = pthread_create(&tids[i], NULL, ten_naps, NULL);
        if (err) {
            fprintf(stderr, "create failed at %d: %s\n", i, strerror(err));
            exit(1);
        }
    }
    for (int i = 0; i < NSLEEPERS; i++)
        pthread_join(tids[i], NULL);
    report("200 threads x 10 naps of 10 ms: under 2 s", mono() - t0 < 2000 * MS);
    report("200 threads x 10 naps of 10 ms: none early", atomic_load(&early_wakeups) == 0);
}

int main(void)
{
    alarm(60);
    plain_sleeps();
    bad_nanosleeps();
    clock_sleep(CLOCK_MONOTONIC, "CLOCK_MONOTONIC");
    clock_sleep(CLOCK_REALTIME, "CLOCK_REALTIME");
    bad_clock_sleeps();
    cputime_sleep();
    interrupted_sleeps();
    concurrent_sleeps();
    if (failures) {
        fprintf(stderr, "%d sleep check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
