/* The runtime's protocols, tested on the runtime alone: park/claim/wake,
 * a timeout racing a wake, timer arm/cancel/fire, idle/notify (a wake
 * from a thread that is not a fiber while every carrier sleeps), and the
 * monitor's hand-off of carriers blocked in calls made in place, and the
 * runtime's clock reads on a fiber, where a signal must wait.
 *
 * No preload and no interposer: this program links every runtime/ source (which is
 * itself a check that the runtime stands without the layers above it),
 * starts two carriers the way preload/init.c does, and runs as the main
 * fiber.  Built with FZ_CHECKS=1, so a broken invariant on the way (a
 * waiter finished twice, a fiber claimed by two carriers) aborts the test
 * with fz_throw's message rather than passing by luck. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "runtime/driver.h"
#include "runtime/fiber.h"
#include "runtime/libc.h"
#include "runtime/monitor.h"
#include "runtime/park.h"
#include "runtime/pool.h"
#include "runtime/sched.h"
#include "runtime/sigthread.h"
#include "runtime/stack.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

#include "tap.h"

#define MS 1000000ull

static void spawn(void *(*fn)(void *), void *arg)
{
    struct fz_fiber_attr attr = {.guard_size = (size_t)-1, .detached = true};
    struct fz_fiber *f;
    if (fz_fiber_create(fn, arg, &attr, &f) != 0) {
        printf("Bail out! cannot create a fiber\n");
        exit(1);
    }
    fz_spawn(f);
}

/* ---- a counter the main fiber waits on ---------------------------------- */

struct count {
    atomic_uint n;
    unsigned until;
};

static bool count_short(void *ctx)
{
    struct count *c = ctx;
    return atomic_load(&c->n) < c->until;
}

static void count_up(struct count *c)
{
    atomic_fetch_add(&c->n, 1);
    fz_unpark_addr(&c->n, ~0u, UINT_MAX);
}

/* Wait until c reaches `until`; false if 5 s pass first. */
static bool count_wait(struct count *c, unsigned until)
{
    c->until = until;
    uint64_t deadline = fz_now_ns() + 5000 * MS;
    while (atomic_load(&c->n) < until)
        if (fz_park_addr(&c->n, ~0u, count_short, c, deadline, FZ_INTR_NONE) == ETIMEDOUT)
            return false;
    return true;
}

/* ---- park / claim / wake -------------------------------------------- */

#define PARKERS 64
static atomic_uint gate;
static struct count parked_or_past, done;
static atomic_uint notified, refused, other;

static bool gate_closed(void *ctx)
{
    (void)ctx;
    return atomic_load(&gate) == 0;
}

static void *parker(void *arg)
{
    (void)arg;
    atomic_fetch_add(&parked_or_past.n, 1);
    fz_unpark_addr(&parked_or_past.n, ~0u, UINT_MAX);
    int r = fz_park_addr(&gate, ~0u, gate_closed, NULL, 0, FZ_INTR_NONE);
    atomic_fetch_add(r == 0 ? &notified : r == EAGAIN ? &refused : &other, 1);
    count_up(&done);
    return NULL;
}

static void test_park_wake(void)
{
    for (int i = 0; i < PARKERS; i++)
        spawn(parker, NULL);
    TAP_CHECK(count_wait(&parked_or_past, PARKERS), "park: %d fibers started", PARKERS);
    atomic_store(&gate, 1);
    unsigned woken = fz_unpark_addr(&gate, ~0u, UINT_MAX);
    TAP_CHECK(count_wait(&done, PARKERS), "wake: every parked fiber ran again");
    TAP_CHECK(atomic_load(&notified) == woken && woken + atomic_load(&refused) == PARKERS &&
                  atomic_load(&other) == 0,
              "claim: each fiber woken once (%u by the unpark, %u saw the gate open)", woken,
              atomic_load(&refused));
    TAP_CHECK(fz_unpark_addr(&gate, ~0u, UINT_MAX) == 0, "nobody is left on the address");
}

/* ---- a timeout racing a wake: exactly one source wins ------------------ */

#define RACES 300
static atomic_uint race_word;
static struct count race_done;
static atomic_int race_result;

static void *racer(void *arg)
{
    uint64_t deadline = *(uint64_t *)arg;
    atomic_store(&race_result, fz_park_addr(&race_word, ~0u, NULL, NULL, deadline, FZ_INTR_NONE));
    count_up(&race_done);
    return NULL;
}

static void test_timeout_races_wake(void)
{
    unsigned agree = 0, by_wake = 0, by_timer = 0;
    for (unsigned i = 0; i < RACES; i++) {
        uint64_t deadline = fz_now_ns() + (i % 5) * 20000;
        spawn(racer, &deadline);
        while (fz_now_ns() < deadline - (i % 3) * 10000)
            fz_yield(fz_self());
        unsigned woken = fz_unpark_addr(&race_word, ~0u, 1);
        if (!count_wait(&race_done, i + 1))
            break;
        int r = atomic_load(&race_result);
        agree += (woken == 1 && r == 0) || (woken == 0 && r == ETIMEDOUT);
        by_wake += r == 0;
        by_timer += r == ETIMEDOUT;
    }
    TAP_CHECK(agree == RACES,
              "timeout vs wake: the winner is the only one (%u/%u agree; %u woken, %u timed out)",
              agree, RACES, by_wake, by_timer);
}

/* ---- timers: fire, never early; cancel leaves no stale wake ------------ */

#define SLEEPERS 100
static struct count slept;
static atomic_uint early;

static void *sleeper(void *arg)
{
    uint64_t deadline = fz_now_ns() + (uint64_t)(uintptr_t)arg * 100000;
    int r = fz_sleep_until(deadline, FZ_INTR_NONE);
    if (r != FZ_WAKE_TIMEOUT || fz_now_ns() < deadline)
        atomic_fetch_add(&early, 1);
    count_up(&slept);
    return NULL;
}

static atomic_uint cancel_word, later_word;
static atomic_int first_result, second_result;
static atomic_ullong second_took;
static struct count cancel_done;

static void *cancel_then_wait(void *arg)
{
    (void)arg;
    /* armed for 20 ms, woken at once: the timer is cancelled ... */
    atomic_store(&first_result,
                 fz_park_addr(&cancel_word, ~0u, NULL, NULL, fz_now_ns() + 20 * MS, FZ_INTR_NONE));
    /* ... so it must not end this untimed wait, which main ends at 60 ms */
    uint64_t t0 = fz_now_ns();
    atomic_store(&second_result, fz_park_addr(&later_word, ~0u, NULL, NULL, 0, FZ_INTR_NONE));
    atomic_store(&second_took, fz_now_ns() - t0);
    count_up(&cancel_done);
    return NULL;
}

static void test_timers(void)
{
    uint64_t t0 = fz_now_ns();
    int r = fz_sleep_until(t0 + 2 * MS, FZ_INTR_NONE);
    TAP_CHECK(r == FZ_WAKE_TIMEOUT && fz_now_ns() >= t0 + 2 * MS,
              "fire: a 2 ms sleep ends after 2 ms");
    for (uintptr_t i = 0; i < SLEEPERS; i++)
        spawn(sleeper, (void *)(i % 37));
    TAP_CHECK(count_wait(&slept, SLEEPERS) && atomic_load(&early) == 0,
              "fire: %d timers on two carriers, none early or lost", SLEEPERS);

    spawn(cancel_then_wait, NULL);
    while (fz_unpark_addr(&cancel_word, ~0u, 1) == 0)
        fz_yield(fz_self());
    fz_sleep_until(fz_now_ns() + 60 * MS, FZ_INTR_NONE);
    while (fz_unpark_addr(&later_word, ~0u, 1) == 0)
        fz_yield(fz_self());
    TAP_CHECK(count_wait(&cancel_done, 1) && atomic_load(&first_result) == 0 &&
                  atomic_load(&second_result) == 0 && atomic_load(&second_took) >= 30 * MS,
              "cancel: a woken wait's timer does not fire into the next wait (%llu ms)",
              (unsigned long long)(atomic_load(&second_took) / MS));
}

/* ---- idle / notify ---------------------------------------------------- */

static atomic_uint notify_word;
static atomic_uint os_waiter_word;
static atomic_int os_waiter_result = -1;

static void *os_thread_waker(void *arg)
{
    (void)arg;
    struct timespec nap = {0, 30 * MS};
    nanosleep(&nap, NULL); /* every carrier is idle by now */
    atomic_store(&notify_word, 1);
    fz_unpark_addr(&notify_word, ~0u, 1);
    return NULL;
}

static bool notify_unset(void *ctx)
{
    (void)ctx;
    return atomic_load(&notify_word) == 0;
}

static void *os_thread_waiter(void *arg)
{
    (void)arg;
    atomic_store(&os_waiter_result, fz_park_addr(&os_waiter_word, ~0u, NULL, NULL,
                                                 fz_now_ns() + 5000 * MS, FZ_INTR_NONE));
    return NULL;
}

static void test_idle_notify(void)
{
    pthread_t t;
    fz_os_thread_create(&t, NULL, os_thread_waker, NULL);
    int r = 0;
    uint64_t deadline = fz_now_ns() + 5000 * MS;
    while (atomic_load(&notify_word) == 0 && r != ETIMEDOUT)
        r = fz_park_addr(&notify_word, ~0u, notify_unset, NULL, deadline, FZ_INTR_NONE);
    TAP_CHECK(r != ETIMEDOUT,
              "notify: a wake from an OS thread reaches a fiber while carriers idle");
    pthread_join(t, NULL);

    fz_os_thread_create(&t, NULL, os_thread_waiter, NULL);
    uint64_t until = fz_now_ns() + 5000 * MS;
    while (fz_unpark_addr(&os_waiter_word, ~0u, 1) == 0 && fz_now_ns() < until)
        fz_sleep_until(fz_now_ns() + MS / 10, FZ_INTR_NONE);
    pthread_join(t, NULL);
    TAP_CHECK(atomic_load(&os_waiter_result) == 0,
              "wake: a fiber wakes an OS thread parked on the same address");
}

/* ---- a call made in place that blocks --------------------------------- */

/* Two fibers block their carriers in a call made in place for BLOCK_NS
 * (the hand-off period is set far above it); a fiber one of them spawned
 * just before must still run soon after: the monitor hands a carrier off
 * FZ_BLOCKING_HANDOFF_NS (50 us) into such a call.  RUN_BOUND_NS leaves
 * room for starting spare carriers on a loaded machine and is still far
 * below BLOCK_NS, which the runner waits without the hand-off. */
#define BLOCK_NS (300 * MS)
#define RUN_BOUND_NS (150 * MS)
static struct count blockers_in, blockers_done, runner_ran;
static atomic_ullong runner_spawned_at, runner_ran_at;

static void *runner(void *arg)
{
    (void)arg;
    atomic_store(&runner_ran_at, fz_now_ns());
    count_up(&runner_ran);
    return NULL;
}

static void *blocker(void *arg)
{
    (void)arg;
    count_up(&blockers_in);
    if (atomic_load(&blockers_in.n) == 2) { /* the other one blocks already or soon */
        atomic_store(&runner_spawned_at, fz_now_ns());
        spawn(runner, NULL); /* queued on this carrier, which blocks next */
    }
    struct fz_fiber *self = fz_self();
    struct fz_carrier *c = fz_blocking_enter(self);
    struct timespec nap = fz_ns_to_ts(BLOCK_NS);
    fz_sys2(SYS_nanosleep, (long)&nap, 0); /* the carrier sleeps in the kernel */
    fz_blocking_exit(c, self);
    count_up(&blockers_done);
    return NULL;
}

static void test_blocking_handoff(void)
{
    unsigned long before = atomic_load(&fz_rt.handoffs);
    spawn(blocker, NULL);
    spawn(blocker, NULL);
    bool ran = count_wait(&runner_ran, 1);
    uint64_t took = atomic_load(&runner_ran_at) - atomic_load(&runner_spawned_at);
    TAP_CHECK(ran && took < RUN_BOUND_NS,
              "blocking: a fiber queued behind calls made in place that block runs (%llu us)",
              (unsigned long long)(took / 1000));
    bool done = count_wait(&blockers_done, 2);
    unsigned long handoffs = atomic_load(&fz_rt.handoffs) - before;
    TAP_CHECK(done && handoffs >= 2, "blocking: both blocked carriers were handed off (%lu)",
              handoffs);
    /* the calls are over: no carrier stays stuck (the monitor looks every
     * 25 us just after such calls, every 5 s otherwise) */
    uint64_t until = fz_now_ns() + 1000 * MS;
    while (atomic_load(&fz_rt.stuck) && fz_now_ns() < until)
        fz_sleep_until(fz_now_ns() + MS, FZ_INTR_NONE);
    TAP_CHECK(atomic_load(&fz_rt.stuck) == 0, "blocking: carriers are no longer stuck after");
}

/* ---- the runtime reading its clock on a fiber ----------------------------- */

/* The clock is code the runtime does not own (libc's, the vDSO's).  While
 * runtime code on a fiber is inside it -- a park with its waiter queued, a
 * wake offering its LIFO slot under idle_lock -- a doorbell landing there
 * must wait, as in the runtime's own code.  The test's clock asks the
 * signal side, on every call made on a fiber while it watches, whether a
 * handler could run at that very point. */
static int (*real_clock)(clockid_t, struct timespec *);
static atomic_int watching;
static atomic_uint clock_would_run, clock_held;

static int watched_clock(clockid_t id, struct timespec *ts)
{
    if (atomic_load(&watching)) {
        struct fz_fiber *f = fz_self();
        if (f && f->carrier && f->carrier->current == f)
            atomic_fetch_add(fz_sigthread_may_run(f->carrier, f, (uintptr_t)watched_clock)
                                 ? &clock_would_run
                                 : &clock_held,
                             1);
    }
    return real_clock(id, ts);
}

static atomic_uint clock_gate;

static bool clock_gate_shut(void *ctx)
{
    (void)ctx;
    return atomic_load(&clock_gate) == 0;
}

static void *clock_gate_opener(void *arg)
{
    (void)arg;
    atomic_store(&clock_gate, 1);
    fz_unpark_addr(&clock_gate, ~0u, UINT_MAX);
    return NULL;
}

static void test_clock_reads_hold_signals(void)
{
    real_clock = fz_os_clock_gettime;
    fz_os_clock_gettime = watched_clock;
    atomic_store(&watching, 1);
    /* no clock read of the test's own on a fiber in between: a park with
     * no deadline, ended by a fiber's wake */
    for (int round = 0; round < 20; round++) {
        atomic_store(&clock_gate, 0);
        spawn(clock_gate_opener, NULL);
        while (fz_park_addr(&clock_gate, ~0u, clock_gate_shut, NULL, 0, FZ_INTR_NONE) != EAGAIN &&
               atomic_load(&clock_gate) == 0)
            ;
    }
    atomic_store(&watching, 0);
    fz_os_clock_gettime = real_clock;
    TAP_CHECK(atomic_load(&clock_would_run) == 0 && atomic_load(&clock_held) > 0,
              "clock: a signal landing in the runtime's clock read on a fiber waits (%u held, %u "
              "would have run a handler)",
              atomic_load(&clock_held), atomic_load(&clock_would_run));
}

int main(void)
{
    alarm(120); /* a protocol that hangs ends the test (SIGALRM) */
    const char *why = NULL;
    const struct fz_os_thread_calls os = {pthread_create, pthread_detach};
    if (!fz_tls_setup(&os, &why)) {
        printf("1..0 # SKIP runtime cannot start here: %s\n", why);
        return 0;
    }
    fz_stack_setup(256 * 1024, 4096);
    if (!fz_driver_init()) {
        printf("Bail out! no epoll driver\n");
        return 1;
    }
    fz_os_thread_create = pthread_create;
    fz_os_thread_join = pthread_join;
    fz_os_thread_detach = pthread_detach;
    fz_os_thread_getattr = pthread_getattr_np;
    fz_pool_configure(4);
    /* A 10 s hand-off period: a carrier is handed off only for a call made
     * in place (test_blocking_handoff), never because a test ran long. */
    fz_monitor_configure(10000 * MS);
    if (!fz_sched_start(2, &why)) {
        printf("Bail out! runtime did not start: %s\n", why);
        return 1;
    }
    TAP_CHECK(fz_self() == fz_rt.main_fiber, "the main thread runs as the main fiber");
    test_park_wake();
    test_timeout_races_wake();
    test_timers();
    test_idle_notify();
    test_blocking_handoff();
    test_clock_reads_hold_signals();
    return tap_done();
}
