/* The hand-off monitor: Go's sysmon, in small.
 *
 * A fiber can hold its carrier where no interposer sees it: inside libc
 * (fgets on a pipe, the wait inside system(), stdio and malloc locks), in a
 * raw syscall, or by computing without end.  Fibers queued behind it would
 * wait as long.  One monitor thread samples every carrier's epoch (bumped
 * at each switch) twice per hand-off period.  A carrier that ran the same
 * fiber for a whole sample has its LIFO fiber moved to the inject queue
 * (other carriers take such a fiber themselves when they are idle,
 * sched.c; this covers the case where all are busy).  One that ran it for a
 * whole period is stuck: if no carrier is idle -- idle carriers are also
 * the ones that fire timers and poll fds -- a spare carrier is started or
 * woken; at most as many spares run as carriers are stuck, so the number of
 * carriers running fibers stays at the target.  A spare retires at its
 * next idle point once the stuck carrier has moved on (sched.c).
 *
 * Ownership: only the monitor reads or writes a carrier's `stuck`,
 * `seen_epoch` and `seen_since`, and only it starts spares.  When every
 * carrier is idle it sleeps on a futex without a timeout (a carrier leaving
 * idle wakes it), so an idle program costs nothing; otherwise it wakes once
 * per half period, reading a few words per carrier.
 */
#include <signal.h>
#include "runtime/assert.h"
#include "runtime/dump.h"
#include "runtime/monitor.h"
#include "runtime/sched.h"
#include "runtime/sigthread.h"
#include "runtime/sys.h"

static uint64_t handoff_ns; /* written before the monitor starts, then read-only */
pid_t fz_monitor_tid;       /* for dumps */

/* Update c's stuck state from its epoch. */
static void watch(struct fz_carrier *c, uint64_t now)
{
    unsigned epoch = atomic_load_explicit(&c->epoch, memory_order_relaxed);
    bool busy = __atomic_load_n(&c->current, __ATOMIC_RELAXED) != NULL;
    /* seen_since 0: never looked at (a carrier's epoch starts at 0 too) */
    if (epoch != c->seen_epoch || !busy || c->seen_since == 0) {
        c->seen_epoch = epoch;
        c->seen_since = now;
        if (c->stuck) {
            c->stuck = false;
            atomic_fetch_sub(&fz_rt.stuck, 1);
        }
        return;
    }
    if (!c->stuck && now - c->seen_since >= handoff_ns) {
        c->stuck = true;
        atomic_fetch_add(&fz_rt.stuck, 1);
        atomic_fetch_add(&fz_rt.handoffs, 1);
    }
    /* The same fiber ran for a whole sample period: a fiber it woke into
     * its LIFO slot has waited at least that long.  Thieves take such a
     * fiber after a few microseconds (sched.c); this is the backstop for
     * when every carrier is busy and none looks. */
    fz_sched_rescue_lifo(c);
}

/* Wake a retired spare, or start a new one. */
static void add_spare(unsigned n)
{
    for (unsigned i = fz_rt.target; i < n; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        if (atomic_load(&c->retired)) {
            atomic_store(&c->retired, 0);
            atomic_fetch_add(&fz_rt.spares_running, 1);
            atomic_store(&c->retire_word, 0);
            fz_futex_wake(&c->retire_word, 1);
            return;
        }
    }
    if (n >= fz_rt.capacity)
        return;
    struct fz_carrier *c = &fz_rt.carriers[n];
    fz_carrier_init(c, n);
    c->spare = true;
    atomic_fetch_add(&fz_rt.spares_running, 1);
    atomic_store_explicit(&fz_rt.ncarriers, n + 1, memory_order_release);
    if (!fz_sched_start_carrier(c)) {
        /* an empty slot others may steal from: harmless; try again later */
        atomic_fetch_sub(&fz_rt.spares_running, 1);
        atomic_store(&c->retired, 1);
    }
}

static bool all_idle(void)
{
    return atomic_load(&fz_rt.num_idle) >= fz_rt.target + atomic_load(&fz_rt.spares_running);
}

static void *monitor_main(void *arg)
{
    (void)arg;
    fz_monitor_tid = (pid_t)fz_sys0(SYS_gettid);
    /* Signals are the program's threads' business -- except glibc's own
     * (32: cancellation, 33: set*id, which every thread must answer or
     * setuid() waits forever). */
    uint64_t all = ~0ull & ~(1ull << 31) & ~(1ull << 32);
    fz_sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8);
    struct timespec nap = fz_ns_to_ts(handoff_ns / 2);
    for (;;) {
        if (all_idle()) {
            atomic_store(&fz_rt.monitor_asleep, 1);
            if (all_idle())
                fz_futex_wait(&fz_rt.monitor_asleep, 1, NULL);
            atomic_store(&fz_rt.monitor_asleep, 0);
        }
        fz_sys2(SYS_nanosleep, (long)&nap, 0);
        unsigned n = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
        uint64_t now = fz_now_ns();
        /* a carrier waiting for a fiber a dump holds is not stuck */
        bool dumping = atomic_load_explicit(&fz_dump_running, memory_order_relaxed);
        for (unsigned i = 0; i < n; i++)
            if (dumping)
                fz_rt.carriers[i].seen_since = 0;
            else
                watch(&fz_rt.carriers[i], now);
        fz_sigthread_run_deferred(NULL);
        /* No idle carrier means nobody fires timers or polls fds either,
         * so a spare is due even when no fiber is queued yet. */
        if (atomic_load(&fz_rt.spares_running) < atomic_load(&fz_rt.stuck) &&
            atomic_load(&fz_rt.num_idle) == 0)
            add_spare(n);
    }
    return NULL;
}

void fz_monitor_configure(uint64_t ns)
{
    handoff_ns = ns;
}

void fz_monitor_start(void)
{
    FZ_ASSERT(handoff_ns > 0); /* fz_monitor_configure ran */
    pthread_t t;
    fz_os_thread_create(&t, NULL, monitor_main, NULL);
}
