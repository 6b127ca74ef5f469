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
 * whole period, its OS thread computing or asleep in the kernel, is stuck
 * (not one that waited for a CPU, or for the mmap lock while releasing a
 * stack: a spare would wait as long).  If no carrier is idle -- idle
 * carriers are also the ones that fire timers and poll fds -- a spare
 * carrier is started or woken; at most as many spares run as carriers are
 * stuck, so the number of carriers running fibers stays at the target.  A
 * spare retires at its next idle point once the stuck carrier has moved on
 * (sched.c).
 *
 * Calls made in place (Go's "in a system call"): some calls that may block
 * in the kernel usually return within a microsecond (fsync on a cached or
 * tmpfs file); sending them to the blocking pool costs two cross-thread
 * wake-ups each.  A fiber makes them on its carrier after stamping it
 * (fz_blocking_enter: the fiber and the time); a carrier whose stamp is
 * FZ_BLOCKING_HANDOFF_NS old is stuck like one that ran a fiber for the
 * hand-off period.  To see that in time the monitor naps QUICK_NAP_NS
 * while such calls are being made (it learns of them from the carriers'
 * blocking_seq, and a caller wakes it from a long nap), and its long nap
 * otherwise, so a program that makes none pays nothing for it.
 *
 * Ownership: only the monitor reads or writes a carrier's `stuck`, `no_thread`,
 * `seen_epoch` and `seen_since`, and only it starts spares.  When every
 * carrier is idle it sleeps on a futex without a timeout (a carrier leaving
 * idle wakes it), so an idle program costs nothing; otherwise it wakes once
 * per half period, reading a few words per carrier.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include "runtime/affinity.h"
#include "runtime/assert.h"
#include "runtime/cputime.h"
#include "runtime/det.h"
#include "runtime/dump.h"
#include "runtime/monitor.h"
#include "runtime/ownfd.h"
#include "runtime/tls.h"
#include "runtime/procstat.h"
#include "runtime/sched.h"
#include "runtime/sigthread.h"
#include "runtime/sys.h"

static uint64_t handoff_ns;  /* written before the monitor starts, then read-only */
static unsigned usable_cpus; /* the monitor's own: read at its start */
pid_t fz_monitor_tid;        /* for dumps */

/* A call made in place (fz_blocking_enter) this old has its carrier handed
 * off.  A pool round trip costs about 40 us on a 2-core VM (make bench,
 * pool_roundtrip_fdatasync), so a fiber queued behind a call made in place
 * waits at most about what that call cost its own caller through the pool;
 * shorter, a VM's preemption of a carrier (tens of microseconds) would
 * start spares for calls that were not blocked at all.  Go's sysmon
 * retakes a processor after 20 us to 10 ms, depending on its own pace. */
#define FZ_BLOCKING_HANDOFF_NS 50000u
/* The monitor's nap while calls are made in place: half the threshold, so
 * a hand-off comes 50-75 us into a blocked call. */
#define QUICK_NAP_NS (FZ_BLOCKING_HANDOFF_NS / 2)
/* Quick naps go on this many naps (1 ms) after the last call made in
 * place was seen, so a program that makes them in bursts does not wake the
 * monitor from its long nap at every call. */
#define QUICK_NAPS_AFTER 40u
/* The monitor's timer slack: the kernel's default 50 us would make a
 * 25 us nap last 75 us. */
#define MONITOR_TIMER_SLACK_NS 1000ul
/* A carrier on one fiber counts as computing when its OS thread was on a
 * CPU for at least 1/RUN_SHARE_MIN_DIV of the time since the monitor first
 * saw that run: a quarter leaves room for a program sharing the machine
 * with others (a carrier that computes gets its share of the CPUs), and is
 * far above what a carrier waiting behind dozens of runnable threads gets. */
#define RUN_SHARE_MIN_DIV 4u
/* ...or for at least 1/FAIR_SHARE_MIN_DIV of its fair share, the CPUs the
 * process may use over the carriers running fibers, when that is lower:
 * eight carriers computing on two CPUs get 0.24 each, and one of them that
 * a fiber waited behind was never found stuck (one of sig_stw's hangs on
 * two carriers: that fiber's ack never came).  A carrier waiting for a CPU
 * gets far less. */
#define FAIR_SHARE_MIN_DIV 2u
/* ...or, while fibers starve (no carrier idle, none switched for a whole
 * hand-off period, a fiber queued to run: `starving`), for at least
 * 1/STARVED_SHARE_MIN_DIV of the time.  Eight threads spinning on two
 * CPUs beside two busy processes get 2/9 each, under both bars above: the
 * seven carriers running them were never found stuck, and the eighth
 * thread, runnable, never ran (sig_stw hung on a loaded machine; natively
 * the kernel gives every thread its turn).  A carrier the kernel keeps
 * off the CPU gets almost nothing, so this bar still tells it apart. */
#define STARVED_SHARE_MIN_DIV 16u

/* 1 while the monitor naps its long nap: the next call made in place wakes
 * it (one futex wake), then it naps quick ones.  Written by the monitor
 * once per long nap, read by every call made in place. */
static atomic_uint long_nap;

/* Stopping it (the runtime shrinking back to one OS thread, sched.c):
 * `leave` is set by carrier 0, which then waits for `gone`, set by the
 * monitor as the last thing it does to the runtime; the main fiber joins
 * the thread (monitor_thread, written by whoever starts or joins it: the
 * main fiber, the only one then). */
static atomic_uint leave, gone;
static pthread_t monitor_thread;
static bool monitor_running;

struct fz_carrier *fz_blocking_enter(struct fz_fiber *self)
{
    struct fz_carrier *c = self->carrier;
    atomic_store_explicit(&c->blocking_since, fz_now_ns(), memory_order_relaxed);
    /* A full barrier (an exchange), then long_nap: the monitor stores
     * long_nap, then looks at blocking_fiber (in_call_anywhere), so either
     * it sees this call or this call sees it napping long and wakes it.
     * The monitor that sees the fiber sees its time too. */
    atomic_exchange(&c->blocking_fiber, self);
    /* only this carrier writes it: no read-modify-write needed */
    atomic_store_explicit(&c->blocking_seq,
                          atomic_load_explicit(&c->blocking_seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (atomic_load(&long_nap) && atomic_exchange(&long_nap, 0))
        fz_futex_wake(&long_nap, 1);
    return c;
}

void fz_blocking_exit(struct fz_carrier *c, struct fz_fiber *self)
{
    /* A handler that parked may have moved self off c, and c may run
     * another fiber's call in place by now: clear only our own stamp. */
    struct fz_fiber *expected = self;
    atomic_compare_exchange_strong(&c->blocking_fiber, &expected, NULL);
}

/* c's fiber is in a call made in place that began FZ_BLOCKING_HANDOFF_NS
 * ago or more.  Also notes whether calls were made in place since the last
 * look. */
static bool blocked_in_call(struct fz_carrier *c, const struct fz_fiber *running, uint64_t now,
                            bool *calls_seen)
{
    if (fz_det_on)
        return false; /* --seed: one carrier, never a spare (runtime/det.c) */
    unsigned seq = atomic_load_explicit(&c->blocking_seq, memory_order_relaxed);
    if (seq != c->seen_blocking_seq) {
        c->seen_blocking_seq = seq;
        *calls_seen = true;
    }
    struct fz_fiber *f = atomic_load_explicit(&c->blocking_fiber, memory_order_acquire);
    if (!f)
        return false;
    *calls_seen = true;
    uint64_t since = atomic_load_explicit(&c->blocking_since, memory_order_relaxed);
    return f == running && now > since && now - since >= FZ_BLOCKING_HANDOFF_NS;
}

/* The first carriers' /proc stat files, kept open from the monitor's first
 * look at each and read again from offset 0.  An open takes the lowest
 * free number for an instant, before ownfd moves it high: opened at every
 * look, the monitor of a program with a fiber computing took that instant
 * every few milliseconds, and a program's open() racing it on another
 * thread got another number than natively (`close(0);
 * open("/dev/null")` not landing on 0).  Now the instant comes once per
 * carrier.  Four: the carriers of a 2-4 CPU machine, while the band of
 * per-wait numbers they hold (64, ownfd.c) stays for waits; spares beyond
 * them open at each look, as before.  Monitor thread only: reset at its
 * start (a fork child's were closed by fz_ownfd_after_fork), released at
 * its exit. */
#define STAT_FILES 4
static struct {
    int fd;
    pid_t tid; /* the carrier thread it is of */
} stat_files[STAT_FILES];

static void stat_files_reset(void)
{
    for (int i = 0; i < STAT_FILES; i++)
        stat_files[i].fd = -1;
}

static void stat_files_release(void)
{
    for (int i = 0; i < STAT_FILES; i++)
        if (stat_files[i].fd >= 0)
            fz_ownfd_release(&stat_files[i].fd);
}

/* c's stat file, opened if need be; -1 if it cannot be kept open. */
static int stat_file_of(struct fz_carrier *c, const char *path)
{
    size_t i = (size_t)(c - fz_rt.carriers);
    if (i >= STAT_FILES)
        return -1;
    /* ownfd moves it when the program dup2s onto its number */
    int fd = __atomic_load_n(&stat_files[i].fd, __ATOMIC_ACQUIRE);
    if (fd >= 0 && stat_files[i].tid == c->tid)
        return fd;
    if (stat_files[i].fd >= 0)
        fz_ownfd_release(&stat_files[i].fd); /* a carrier thread of before a shrink */
    stat_files[i].fd = (int)fz_sys4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (stat_files[i].fd < 0 || !fz_ownfd_adopt(&stat_files[i].fd, false))
        return stat_files[i].fd = -1;
    stat_files[i].tid = c->tid;
    return stat_files[i].fd;
}

/* c's OS thread's state letter in /proc (R running or runnable, S or D
 * sleeping in the kernel...), '?' when it cannot be read.  Read with raw
 * system calls (the monitor must not run interposers) through an owned fd
 * (ownfd.h: the program never sees it). */
static char carrier_state(struct fz_carrier *c)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)c->tid);
    int fd = stat_file_of(c, path);
    const char *state = fd >= 0 ? fz_procstat_field_fd(fd, buf, sizeof buf, 3)
                                : fz_procstat_field(path, true, buf, sizeof buf, 3);
    return state ? *state : '?';
}

/* c's OS thread sleeps in the kernel (state S or D), rather than being
 * preempted or computing inside the call (R): only then would a spare
 * carrier get a CPU its fibers cannot use.  A 2-core VM preempts a carrier
 * for tens of microseconds now and then; without this look those
 * preemptions during a short call count as hand-offs.  Unknown: sleeping. */
static bool carrier_sleeps(struct fz_carrier *c)
{
    return carrier_state(c) != 'R';
}

/* CPU time c's OS thread has used, in ns; 0 when it cannot be read. */
static uint64_t carrier_cpu_ns(const struct fz_carrier *c)
{
    return fz_cpu_clock_ns(fz_kernel_thread_clock(c->tid));
}

/* A carrier's OS thread had `cpu` ns of CPU time in `elapsed` ns: enough
 * to be computing (RUN_SHARE_MIN_DIV, FAIR_SHARE_MIN_DIV)? */
static bool computing(uint64_t cpu, uint64_t elapsed)
{
    if (cpu * RUN_SHARE_MIN_DIV >= elapsed)
        return true;
    unsigned running = fz_rt.target + atomic_load(&fz_rt.spares_running);
    unsigned idle = atomic_load(&fz_rt.num_idle);
    running = running > idle ? running - idle : 1;
    /* Spares stand in for stuck carriers: the carriers running fibers are
     * never more than the target.  Counting spares lowered the bar with
     * each spare started, so that carriers that only waited for a CPU
     * behind them passed it and started more. */
    if (running > fz_rt.target)
        running = fz_rt.target;
    return cpu * FAIR_SHARE_MIN_DIV * running >= elapsed * usable_cpus;
}

/* Carriers the monitor now counts stuck for an uninterruptible sleep
 * (FZ_STUCK_DISK).  Monitor only. */
static unsigned disk_stuck;

/* Fibers starve: see STARVED_SHARE_MIN_DIV.  Monitor only, like the sum
 * of the carriers' epochs it last saw change and when. */
static bool starving;
static unsigned seen_switches;
static uint64_t switches_since;

/* A fiber is queued to run somewhere: a LIFO slot, a ring, the inject
 * queue. */
static bool work_queued(unsigned n)
{
    if (!fz_inject_empty(&fz_rt.inject))
        return true;
    for (unsigned i = 0; i < n; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        if (atomic_load_explicit(&c->lifo, memory_order_relaxed) || fz_runq_len(&c->runq))
            return true;
    }
    return false;
}

/* No carrier switched fibers for a whole hand-off period, none is idle,
 * and a fiber is queued: the fibers on the carriers do not yield, and the
 * queued one waits for one of them to.  An idle carrier or a switch would
 * take it (they look at every queue), so neither is starving. */
static bool fibers_starve(unsigned n, uint64_t now)
{
    unsigned switches = 0;
    for (unsigned i = 0; i < n; i++)
        switches += atomic_load_explicit(&fz_rt.carriers[i].epoch, memory_order_relaxed);
    if (switches != seen_switches || atomic_load(&fz_rt.num_idle) || !work_queued(n)) {
        seen_switches = switches;
        switches_since = now;
        return false;
    }
    return now - switches_since >= handoff_ns;
}

/* c has run one fiber for a whole hand-off period: did its OS thread run,
 * and if so, how?  A carrier that waits for a CPU (state R, little CPU
 * time since the monitor's first look at this run) is not what holds its
 * fibers back: a spare would wait for the same CPUs, and each spare
 * started so makes every carrier wait longer -- on a 2-core VM the monitor
 * once started 67 spares for a program whose 60,000 threads only slept.
 * Computing (on a CPU for 1/RUN_SHARE_MIN_DIV of the time or more) or
 * sleeping in the kernel is stuck; unknown is stuck, as before this rule. */
static enum fz_stuck ran_or_slept(struct fz_carrier *c, uint64_t now)
{
    uint64_t cpu = carrier_cpu_ns(c);
    if (!cpu || !c->seen_cpu_ns || now <= c->seen_cpu_at || cpu < c->seen_cpu_ns)
        return FZ_STUCK_UNREAD;
    uint64_t ran = cpu - c->seen_cpu_ns, elapsed = now - c->seen_cpu_at;
    if (computing(ran, elapsed) || (starving && ran * STARVED_SHARE_MIN_DIV >= elapsed))
        return FZ_STUCK_COMPUTING;
    char state = carrier_state(c);
    if (state == '?')
        return FZ_STUCK_UNREAD;
    if (state == 'R')
        return FZ_NOT_STUCK;
    if (state != 'D')
        return FZ_STUCK_ASLEEP;
    /* An uninterruptible sleep is a disk wait or a kernel lock: most often,
     * under fiber exits in bulk, a page fault waiting for the mmap lock
     * behind other carriers' munmaps, which a spare would queue for too.
     * A disk wait lasts: stuck when the next look sees it again.  But one
     * such carrier at a time: when several sleep so, they most likely
     * queue for one lock of this process, and a spare started for each
     * would queue too.  (A guard from reasoning: no test reaches it, and
     * the 63 spares of one CI run came from the rule above, computing.)
     * Disk reads the program makes through read() and the like are calls
     * made in place, handed off by their own rule (FZ_STUCK_IN_CALL). */
    bool again = c->seen_disk_wait;
    c->seen_disk_wait = true;
    return again && disk_stuck == 0 ? FZ_STUCK_DISK : FZ_NOT_STUCK;
}

/* c ran one fiber since seen_since: is that run long enough to be stuck,
 * and why?  The first look at a run that saw no switch takes the CPU
 * clock's reading (half a period in, at the monitor's pace); the verdict
 * comes at the first look a whole period in that has a reading to compare
 * with. */
static enum fz_stuck long_run(struct fz_carrier *c, uint64_t now)
{
    if (c->stuck)
        return c->stuck; /* stays so until it switches */
    if (!c->seen_cpu_at) {
        c->seen_cpu_at = now;
        c->seen_cpu_ns = carrier_cpu_ns(c);
        return FZ_NOT_STUCK;
    }
    return now - c->seen_since >= handoff_ns ? ran_or_slept(c, now) : FZ_NOT_STUCK;
}

/* Some carrier is in a call made in place now (see fz_blocking_enter). */
static bool in_call_anywhere(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (atomic_load(&fz_rt.carriers[i].blocking_fiber))
            return true;
    return false;
}

/* Update c's stuck state from its epoch and its call made in place. */
static void watch(struct fz_carrier *c, uint64_t now, bool *calls_seen)
{
    unsigned epoch = atomic_load_explicit(&c->epoch, memory_order_relaxed);
    struct fz_fiber *running = __atomic_load_n(&c->current, __ATOMIC_RELAXED);
    /* Scheduler code between two fibers is no fiber's run, however long:
     * a park that fires a burst of due timers (100,000 sleepers waking
     * within a few ms: 1-2 ms of a carrier's time) looked like its fiber
     * computing, and each such look started a spare that did nothing a
     * busy carrier was not already doing.  Nor is a wait for the timer
     * wheel's lock, which the carrier firing that burst takes batch after
     * batch. */
    bool busy = running != NULL && !__atomic_load_n(&c->sched_busy, __ATOMIC_RELAXED) &&
                !atomic_load_explicit(&c->waiting_runtime_lock, memory_order_relaxed);
    bool same = true;
    /* seen_since 0: never looked at (a carrier's epoch starts at 0 too) */
    if (epoch != c->seen_epoch || !busy || c->seen_since == 0) {
        c->seen_epoch = epoch;
        c->seen_since = now;
        c->seen_cpu_at = 0;
        c->seen_disk_wait = false;
        same = false;
    }
    bool blocked =
        busy && blocked_in_call(c, running, now, calls_seen) && (c->stuck || carrier_sleeps(c));
    enum fz_stuck why = blocked ? FZ_STUCK_IN_CALL : FZ_NOT_STUCK;
    if (!blocked && same && !atomic_load_explicit(&c->releasing_stack, memory_order_relaxed))
        why = long_run(c, now);
    if (!why) {
        if (c->stuck) {
            if (c->stuck == FZ_STUCK_DISK)
                disk_stuck--;
            c->stuck = FZ_NOT_STUCK;
            atomic_fetch_sub(&fz_rt.stuck, 1);
        }
    } else if (!c->stuck) {
        c->stuck = (uint8_t)why;
        if (why == FZ_STUCK_DISK)
            disk_stuck++;
        atomic_fetch_add(&fz_rt.stuck, 1);
        atomic_fetch_add(&fz_rt.handoffs, 1);
        atomic_fetch_add(&fz_rt.handoffs_by[why], 1);
    }
    /* The same fiber ran for a whole sample period (half the hand-off
     * period, however often the monitor looks): a fiber it woke into its
     * LIFO slot has waited at least that long.  Thieves take such a fiber
     * after a few microseconds (sched.c); this is the backstop for when
     * every carrier is busy and none looks.  A carrier blocked in a call
     * made in place gives its LIFO fiber up at once. */
    if (blocked || (same && now - c->seen_since >= handoff_ns / 2))
        fz_sched_rescue_lifo(c);
}

/* Start c's OS thread as a spare, counted running already; on failure
 * (out of memory or threads) the slot stays retired with no thread, and
 * add_spare's next call starts one rather than waking nobody. */
static void start_spare(struct fz_carrier *c)
{
    c->no_thread = !fz_sched_start_carrier(c);
    if (c->no_thread) {
        /* an empty slot others may steal from: harmless */
        atomic_fetch_sub(&fz_rt.spares_running, 1);
        atomic_store(&c->retired, 1);
    }
}

/* Wake a retired spare, or start a new one. */
static void add_spare(unsigned n)
{
    for (unsigned i = fz_rt.target; i < n; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        if (!atomic_load(&c->retired))
            continue;
        atomic_store(&c->retired, 0);
        atomic_fetch_add(&fz_rt.spares_running, 1);
        if (c->no_thread) {
            start_spare(c);
            return;
        }
        atomic_store(&c->retire_word, 0);
        fz_futex_wake(&c->retire_word, 1);
        return;
    }
    if (n >= fz_rt.capacity)
        return;
    struct fz_carrier *c = &fz_rt.carriers[n];
    fz_carrier_init(c, n);
    c->spare = true;
    atomic_fetch_add(&fz_rt.spares_running, 1);
    atomic_store_explicit(&fz_rt.ncarriers, n + 1, memory_order_release);
    start_spare(c);
}

static bool all_idle(void)
{
    return atomic_load(&fz_rt.num_idle) >= fz_rt.target + atomic_load(&fz_rt.spares_running);
}

static void *monitor_main(void *arg)
{
    (void)arg;
    fz_monitor_tid = (pid_t)fz_sys0(SYS_gettid);
    disk_stuck = 0; /* a restart after a shrink: every slot was reset */
    stat_files_reset();
    starving = false;
    seen_switches = 0;
    switches_since = 0;
    /* Signals are the program's threads' business -- except libc's own
     * (runtime/tls.h: set*id must reach every thread or setuid() waits
     * forever). */
    uint64_t all = ~0ull & ~FZ_LIBC_SIGNALS;
    fz_sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8);
    fz_sys2(SYS_prctl, PR_SET_TIMERSLACK, MONITOR_TIMER_SLACK_NS);
    usable_cpus = fz_affinity_process_cpu_count();
    struct timespec quick_nap = fz_ns_to_ts(QUICK_NAP_NS);
    unsigned quick_naps = 0; /* quick naps left before the long one again */
    while (!atomic_load(&leave)) {
        if (all_idle()) {
            /* leave is read after asleep is set, fz_monitor_leave sets it
             * before it reads asleep: one sees the other */
            atomic_store(&fz_rt.monitor_asleep, 1);
            if (all_idle() && !atomic_load(&leave))
                fz_futex_wait(&fz_rt.monitor_asleep, 1, NULL);
            atomic_store(&fz_rt.monitor_asleep, 0);
        }
        if (quick_naps) {
            fz_sys2(SYS_nanosleep, (long)&quick_nap, 0);
        } else {
            /* a call made in place that began while the monitor slept
             * (all carriers idle just before) or scanned: nap quick */
            struct timespec until = fz_ns_to_ts(fz_now_ns() + handoff_ns / 2);
            atomic_store(&long_nap, 1);
            if (!in_call_anywhere(atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire)) &&
                !atomic_load(&leave))
                fz_futex_wait(&long_nap, 1, &until);
            atomic_store(&long_nap, 0);
        }
        if (atomic_load(&leave))
            break;
        unsigned n = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
        uint64_t now = fz_now_ns();
        /* a carrier waiting for a fiber a dump holds is not stuck */
        bool dumping = atomic_load_explicit(&fz_dump_running, memory_order_relaxed);
        bool calls_seen = false;
        starving = !fz_det_on && !dumping && fibers_starve(n, now);
        for (unsigned i = 0; i < n; i++)
            if (dumping)
                fz_rt.carriers[i].seen_since = 0;
            else
                watch(&fz_rt.carriers[i], now, &calls_seen);
        if (calls_seen)
            quick_naps = QUICK_NAPS_AFTER;
        else if (quick_naps)
            quick_naps--;
        fz_sigthread_run_deferred(NULL);
        /* No idle carrier means nobody fires timers or polls fds either,
         * so a spare is due even when no fiber is queued yet. */
        if (atomic_load(&fz_rt.spares_running) < atomic_load(&fz_rt.stuck) &&
            atomic_load(&fz_rt.num_idle) == 0)
            add_spare(n);
    }
    stat_files_release();
    fz_monitor_tid = 0;
    atomic_store(&gone, 1);
    fz_futex_wake(&gone, 1);
    return NULL;
}

void fz_monitor_configure(uint64_t ns)
{
    handoff_ns = ns;
}

void fz_monitor_start(void)
{
    FZ_ASSERT(handoff_ns > 0); /* fz_monitor_configure ran */
    FZ_ASSERT(!monitor_running);
    monitor_running = fz_os_thread_start_lasting(&monitor_thread, monitor_main, NULL) == 0;
}

void fz_monitor_leave(void)
{
    if (!monitor_running)
        return;
    atomic_store(&leave, 1);
    if (atomic_exchange(&fz_rt.monitor_asleep, 0))
        fz_futex_wake(&fz_rt.monitor_asleep, 1);
    atomic_store(&long_nap, 0);
    fz_futex_wake(&long_nap, 1);
    while (!atomic_load(&gone))
        fz_futex_wait(&gone, 0, NULL);
}

/* No monitor thread is left: the next fz_monitor_start starts afresh. */
static void forget_monitor(void)
{
    monitor_running = false;
    atomic_store(&leave, 0);
    atomic_store(&gone, 0);
}

void fz_monitor_after_fork(void)
{
    forget_monitor(); /* the parent's, which the child has not */
    atomic_store(&long_nap, 0);
    fz_monitor_tid = 0;
}

void fz_monitor_join(void)
{
    if (!monitor_running)
        return;
    fz_os_thread_join_lasting(monitor_thread);
    forget_monitor();
}
