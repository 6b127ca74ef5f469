/* Library start-up: the LD_PRELOAD face of fiberize.
 *
 * The constructor resolves the real symbols, reads the configuration, checks
 * that this glibc's thread internals are the ones the runtime knows, and
 * then adopts the main thread as the first fiber and starts the carriers.
 * Any failure leaves the runtime off: every interposer then passes straight
 * through and the program runs natively (one line on stderr says why).
 *
 * __libc_start_main is interposed only to give the main fiber an unwind
 * point below main(), so pthread_exit from main ends the main fiber rather
 * than the carrier OS thread it happens to run on.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>
#include "preload/config.h"
#include "preload/observe.h"
#include "syscalls/sync.h"
#include "syscalls/real.h"
#include "runtime/cputime.h"
#include "runtime/det.h"
#include "runtime/driver.h"
#include "runtime/identity.h"
#include "runtime/libc.h"
#include "runtime/monitor.h"
#include "runtime/ownfd.h"
#include "runtime/sigthread.h"
#include "runtime/park.h"
#include "runtime/pool.h"
#include "runtime/reactor.h"
#include "runtime/stack.h"
#include "runtime/sched.h"
#include "runtime/stats.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

static void say(const char *a, const char *b)
{
    struct iovec v[3] = {{(void *)a, strlen(a)}, {(void *)b, strlen(b)}, {"\n", 1}};
    (void)!writev(2, v, 3);
}

/* ---- fork child ----------------------------------------------------------
 * The child's only thread is the forking fiber; no carrier came along.  Most
 * children exec or exit at once, so the child does not rebuild the runtime
 * at the fork: it runs as the plain single-threaded process it is natively
 * (the runtime off: every interposer passes through, and a blocking call
 * blocks its one thread, as natively) until it first needs fibers -- its
 * first pthread_create or thrd_create, or pthread_exit or cancellation of
 * the forking fiber, whose unwinding ends in runtime code (syscalls/
 * thread.c and main_fiber_exited below call fz_fork_resume).  --seed
 * rebuilds at the fork: its virtual clock and schedule are the runtime's.
 * Rebuilt eagerly, a child's fork-to-exit cost one epoll instance, an
 * eventfd, the carrier slots and an idle stack, and copied every page of
 * the fd, wait and thread-id tables it reset (issue 17: waitpid).
 *
 * Identity: until the rebuild, the forking fiber's TCB holds the child's
 * real tid (glibc's fork has the kernel write it, CLONE_CHILD_SETTID;
 * musl's _Fork stores it), so getpid, gettid and every libc call that hands
 * the TCB's tid to the kernel answer as natively.  The rebuild gives the
 * tid to carrier 0's idle TCB and the fiber a fake one, as at start-up
 * (runtime/tls_*.c, fz_tls_create(NULL)), which set*id's broadcast needs
 * (glibc signals every TCB's tid: two with the real one hang it).  So an
 * owner-checked lock (recursive or error-checking mutex, rwlock) the child
 * takes before its first thread and releases after it fails with EPERM, as
 * one held across start-up would.
 *
 * State the child changes natively while the runtime is off and the
 * runtime keeps per fiber is taken from the kernel at the rebuild: the
 * signal mask (fz_sched_after_fork), the alternate signal stack, handlers
 * (resync_signal_handlers).  Not the CPU affinity: pinned natively, the
 * child's carriers start pinned (as native threads inherit it) but an idle
 * carrier 0 returns to the parent's process mask. */

/* At the fork, whether the runtime is rebuilt now or later: state that
 * code running before the rebuild could otherwise misread. */
static void fork_child_reset(void)
{
    /* The parent's own fds (its driver's epoll and eventfd, per-wait
     * pidfds) are the parent's instances; closed now, not at the rebuild,
     * when the program's own fds may have taken their numbers (a closefrom
     * while the runtime is off closes them too). */
    fz_ownfd_after_fork();
    /* No carrier runs here: a signal handler's wrapper (syscalls/signal.c)
     * must not take this thread for one of the parent's carriers, and no
     * doorbell of the parent's (tagged with its pid) is ours. */
    atomic_store(&fz_rt.ncarriers, 0);
    fz_rt.carriers = NULL; /* nor may fiberize stats report the parent's */
    fz_rt.pid = 0;         /* fz_in_vfork_child: no CLONE_VM child yet */
    /* The child's only thread: a cancellation of it unwinds into
     * fz_fiber_exit, which then ends the process as a last thread does. */
    atomic_store(&fz_rt.live_fibers, 1);
    /* Nothing here writes the fiber itself: its page would be copied in
     * every child, most of which exec or exit without a rebuild. */
}

/* While the runtime was off, sigaction went straight to the kernel: a
 * handler the child installed then runs unwrapped, and once fibers park it
 * would run on whatever fiber or idle context a carrier has loaded and
 * never end a parked wait with EINTR.  Install each such handler again,
 * through the interposer, which wraps it.  A handler is unwrapped when the
 * interposer's view equals the kernel's (for a wrapped one it shows the
 * program's, never its wrapper).  libc's own signals and the dump signal
 * (FIBERIZE_DUMP_SIGNAL, the runtime's own handler) stay as they are. */
static void resync_signal_handlers(void)
{
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || (FZ_LIBC_SIGNALS & fz_sig_bit(sig)) ||
            sig == fz_config.dump_signal) /* observe.c's, installed raw */
            continue;
        struct sigaction k, seen;
        if (fz_real.sigaction(sig, NULL, &k) != 0 || k.sa_handler == SIG_DFL ||
            k.sa_handler == SIG_IGN || sigaction(sig, NULL, &seen) != 0 ||
            seen.sa_sigaction != k.sa_sigaction)
            continue;
        sigaction(sig, &k, NULL);
    }
}

/* Everything else of the runtime, built afresh around self (the rebuild's
 * order: the tables first, the driver before the scheduler, which
 * registers nothing yet but goes live).  Each part was reset at the fork
 * before; it can wait because only runtime code reads it, and none runs
 * while the runtime is off:
 *  - park buckets, pool, reactor fd states, fiber pool and list, stack
 *    cache lock, driver, scheduler queues and locks, deferred signal
 *    wakes, the thread-id table: each read only by fibers, carriers or the
 *    monitor (the signal wrapper checks fz_on_carrier first);
 *  - their locks, which another carrier may have held at the fork, are
 *    taken only by that code too.  */
static bool fork_child_rebuild(struct fz_fiber *self)
{
    /* natively the child's only thread is its main thread, nothing pending;
     * its CPU clock started at 0 at the fork, and goes on from what it
     * has read since (nothing read the fiber's while the runtime was off) */
    atomic_store(&self->sig_pending, 0);
    uint64_t cpu = 0;
    struct timespec ts;
    if (!fz_det_on && fz_real.clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        cpu = fz_ts_to_ns(&ts);
    /* sigaltstack went to the kernel too: its record is the fiber's now
     * (carrier 0 adopts it, runtime/altstack.c keeps the two in step) */
    stack_t ss;
    if (fz_sys2(SYS_sigaltstack, 0, (long)&ss) == 0) {
        ss.ss_flags &= ~SS_ONSTACK;
        self->altstack = ss;
    }
    fz_park_after_fork();
    fz_pool_after_fork();
    fz_reactor_after_fork();
    fz_fiber_after_fork(self);
    fz_stack_after_fork();
    fz_driver_after_fork();
    if (!fz_sched_after_fork(self)) {
        say("fiberize: ", "fork child runs without the runtime (out of memory)");
        return false;
    }
    fz_cputime_restart(self, cpu);
    fz_sigthread_after_fork();
    fz_ident_after_fork(self, getpid());
    resync_signal_handlers();
    return true;
}

/* Natively a program whose threads have all been joined forks as one
 * thread: the kernel copies and tears down less, and Python's os.fork()
 * reads num_threads 1 from /proc/self/stat and does not warn.  The last
 * of the program's prepare handlers runs before this one (they run in
 * reverse order of registration, and this was registered first). */
static void before_fork(void)
{
    if (fz_rt.active)
        fz_sched_shrink();
}

static void child_after_fork(void)
{
    struct fz_fiber *self = fz_self();
    /* a child that had not rebuilt yet forking again from that fiber */
    if (!self && fz_rt.fork_pending && fz_tls_current_fiber() == fz_rt.fork_pending)
        self = fz_rt.fork_pending;
    fz_rt.active = false;
    fz_rt.fork_pending = NULL;
    if (!self)
        return; /* forked from a thread that is not a fiber */
    fork_child_reset();
    if (fz_det_on)
        fork_child_rebuild(self);
    else
        fz_rt.fork_pending = self;
}

/* What native threads get: RLIMIT_STACK, or 2 MiB when unlimited (glibc). */
static size_t native_stack_size(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 2u << 20;
    if (rl.rlim_cur < 16384)
        return 16384;
    return rl.rlim_cur;
}

static void print_stats_at_exit(void)
{
    if (fz_rt.active || fz_rt.carriers)
        fz_stats_print();
}

static bool start_runtime(void)
{
    const char *why = NULL;
    const struct fz_os_thread_calls os = {fz_real.pthread_create, fz_real.pthread_detach};
    if (!fz_tls_setup(&os, &why)) {
        say("fiberize: runtime off, threads stay native: ", why);
        return false;
    }
    if (!fz_sync_layout_check(&why)) {
        say("fiberize: runtime off, threads stay native: ", why);
        return false;
    }
    fz_stack_setup(fz_config.stack_size ? fz_config.stack_size : native_stack_size(), 4096);
    if (!fz_driver_init()) {
        say("fiberize: runtime off: ", "cannot create the epoll driver");
        return false;
    }
    /* the runtime sits below the interposers: it gets the real functions
     * and its settings from here, and never reads either itself */
    fz_os_thread_create = fz_real.pthread_create;
    fz_os_thread_join = fz_real.pthread_join;
    fz_os_thread_detach = fz_real.pthread_detach;
    fz_os_thread_getattr = fz_real.pthread_getattr_np;
    fz_os_clock_gettime = fz_real.clock_gettime;
    fz_pool_configure(fz_config.pool_max);
    unsigned workers = fz_config.workers;
    uint64_t handoff_ns = (uint64_t)fz_config.handoff_us * 1000u;
    if (fz_config.seeded) {
        /* one carrier, and no spare ever: a second OS thread running
         * fibers would make the schedule the machine's again */
        const struct fz_det_settings det = {
            fz_config.seed, fz_config.seed_depth, fz_config.seed_steps,
            fz_config.seed_report[0] ? fz_config.seed_report : NULL, fz_observe_dump};
        fz_det_setup(&det);
        workers = 1;
        handoff_ns = UINT64_MAX / 4;
    }
    fz_monitor_configure(handoff_ns);
    if (!fz_sched_start(workers, &why)) {
        say("fiberize: runtime off: ", why);
        return false;
    }
    fz_fork_rebuild = fork_child_rebuild;
    pthread_atfork(before_fork, NULL, child_after_fork);
    fz_stats_started();
    return true;
}

__attribute__((constructor)) static void fiberize_init(void)
{
    const char *missing = NULL;
    if (!fz_real_resolve(&missing)) {
        say("fiberize: runtime off: libc lacks ", missing);
        return;
    }
    fz_config_load();
    fz_hook_settings = (struct fz_hook_settings){fz_config.hooks, fz_config.file_io_pool};
    if (fz_config.disabled)
        return;
    if (!start_runtime())
        return;
    atexit(fz_tls_process_exit); /* registered first: runs after the program's */
    if (fz_det_on)
        atexit(fz_det_at_exit);
    if (fz_config.stats)
        atexit(print_stats_at_exit);
    fz_observe_start();
}

/* ---- main's unwind point --------------------------------------------- */

static int (*program_main)(int, char **, char **);

static __attribute__((noreturn)) void main_fiber_exited(void)
{
    fz_fork_resume(); /* cancelled in a fork child yet to rebuild */
    struct fz_fiber *m = fz_rt.main_fiber;
    atomic_store(&fz_rt.main_exited, true);
    fz_fiber_exit(m);
}

struct main_call {
    int argc;
    char **argv, **envp;
    int status;
    bool returned;
};

static void *call_program_main(void *arg)
{
    struct main_call *m = arg;
    m->status = program_main(m->argc, m->argv, m->envp);
    m->returned = true;
    return NULL;
}

static int main_with_unwind_point(int argc, char **argv, char **envp)
{
    if (!fz_rt.active || fz_self() != fz_rt.main_fiber)
        return program_main(argc, argv, envp);
    struct main_call m = {argc, argv, envp, 0, false};
    fz_rt.main_unwind_ready = true;
    fz_tls_run_body(fz_rt.main_fiber->tcb, call_program_main, &m);
    if (!m.returned) /* pthread_exit or cancellation ended main */
        main_fiber_exited();
    return m.status;
}

FZ_EXPORT int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
                                void (*init)(void), void (*fini)(void), void (*rtld_fini)(void),
                                void *stack_end)
{
    program_main = main; /* fz_real slots resolve themselves on first use */
    return fz_real.__libc_start_main(main_with_unwind_point, argc, argv, init, fini, rtld_fini,
                                     stack_end);
}
