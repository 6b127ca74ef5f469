/* Thread CPU clocks belong to threads.  A fixed amount of work costs a
 * thread about the CPU time it costs the process when it runs alone
 * (calibrated first), measured with clock_gettime(CLOCK_THREAD_CPUTIME_ID),
 * with the clock pthread_getcpuclockid gives another thread, and with
 * getrusage(RUSAGE_THREAD) -- also with two such threads at once (under
 * fiberize they may share carriers and migrate).  A thread that sleeps
 * uses almost none; a thread's clock never goes backwards across sleeps
 * and yields.  Another thread's clock, read while that thread computes,
 * includes the time it has computed so far.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static int64_t ns_of(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static volatile unsigned long sink;
static unsigned long work_iters;

static void work(void)
{
    unsigned long x = 1;
    for (unsigned long i = 0; i < work_iters; i++)
        x = x * 6364136223846793005ul + 1442695040888963407ul;
    sink = x;
}

static int64_t calibrated;
static atomic_int spinners_done, release;

static int near(int64_t got, int64_t want)
{
    return got >= want * 6 / 10 && got <= want * 16 / 10;
}

struct result {
    int64_t by_clock, by_rusage;
};

static void *spinner(void *arg)
{
    struct result *r = arg;
    struct rusage before, after;
    getrusage(RUSAGE_THREAD, &before);
    int64_t t0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
    work();
    r->by_clock = ns_of(CLOCK_THREAD_CPUTIME_ID) - t0;
    getrusage(RUSAGE_THREAD, &after);
    r->by_rusage = ((after.ru_utime.tv_sec + after.ru_stime.tv_sec) -
                    (before.ru_utime.tv_sec + before.ru_stime.tv_sec)) *
                       1000000000ll +
                   ((after.ru_utime.tv_usec + after.ru_stime.tv_usec) -
                    (before.ru_utime.tv_usec + before.ru_stime.tv_usec)) *
                       1000ll;
    atomic_fetch_add(&spinners_done, 1);
    while (!atomic_load(&release)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static atomic_int backwards;
static int64_t sleeper_cpu;

static atomic_int computing_started;

static void *computes(void *arg)
{
    (void)arg;
    atomic_store(&computing_started, 1);
    work();
    return NULL;
}

/* Read a computing thread's clock 60 ms into its ~150 ms of work: it must
 * show a good part of those 60 ms, and never less at the next read. */
static int running_clock_counts(void)
{
    pthread_t t;
    pthread_create(&t, NULL, computes, NULL);
    while (!atomic_load(&computing_started))
        sched_yield();
    struct timespec ts = {0, 60000000};
    nanosleep(&ts, NULL);
    clockid_t c;
    int ok = pthread_getcpuclockid(t, &c) == 0;
    int64_t first = ok ? ns_of(c) : -1, second = ok ? ns_of(c) : -1;
    pthread_join(t, NULL);
    if (first < 20000000 || second < first)
        fprintf(stderr, "a computing thread's clock read %lld, then %lld\n", (long long)first,
                (long long)second);
    return first >= 20000000 && second >= first;
}

static void *sleeper(void *arg)
{
    (void)arg;
    int64_t t0 = ns_of(CLOCK_THREAD_CPUTIME_ID), last = t0;
    for (int i = 0; i < 40; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        sched_yield();
        int64_t now = ns_of(CLOCK_THREAD_CPUTIME_ID);
        if (now < last)
            atomic_fetch_add(&backwards, 1);
        last = now;
    }
    sleeper_cpu = last - t0;
    return NULL;
}

int main(void)
{
    /* calibrate: about 150 ms of work, measured on the process clock */
    work_iters = 1000000;
    int64_t p0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
    work();
    int64_t one = ns_of(CLOCK_PROCESS_CPUTIME_ID) - p0;
    if (one <= 0)
        one = 1;
    work_iters = (unsigned long)(work_iters * (150000000.0 / (double)one));
    p0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
    work();
    calibrated = ns_of(CLOCK_PROCESS_CPUTIME_ID) - p0;

    clockid_t mine;
    report("pthread_getcpuclockid of main works",
           pthread_getcpuclockid(pthread_self(), &mine) == 0 && ns_of(mine) >= 0);

    struct result r[2];
    pthread_t t[2], s;
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, spinner, &r[i]);
    pthread_create(&s, NULL, sleeper, NULL);
    while (atomic_load(&spinners_done) < 2) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int by_other = 1;
    for (int i = 0; i < 2; i++) {
        clockid_t c;
        by_other &= pthread_getcpuclockid(t[i], &c) == 0 && ns_of(c) >= calibrated * 6 / 10;
    }
    atomic_store(&release, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_join(s, NULL);
    report("CLOCK_THREAD_CPUTIME_ID: each of two spinning threads used its share",
           near(r[0].by_clock, calibrated) && near(r[1].by_clock, calibrated));
    report("getrusage(RUSAGE_THREAD) agrees",
           near(r[0].by_rusage, calibrated) && near(r[1].by_rusage, calibrated));
    report("pthread_getcpuclockid of another thread reads its time", by_other);
    report("a sleeping thread uses almost no CPU", sleeper_cpu >= 0 && sleeper_cpu < 20000000);
    report("a thread's clock never goes backwards", !atomic_load(&backwards));
    report("another thread's clock read while it computes counts that time",
           running_clock_counts());
    if (failures)
        fprintf(stderr, "calibrated %lld, spinners %lld %lld, rusage %lld %lld, sleeper %lld\n",
                (long long)calibrated, (long long)r[0].by_clock, (long long)r[1].by_clock,
                (long long)r[0].by_rusage, (long long)r[1].by_rusage, (long long)sleeper_cpu);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
