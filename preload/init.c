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
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>
#include "preload/config.h"
#include "preload/observe.h"
#include "syscalls/sync.h"
#include "syscalls/real.h"
#include "runtime/det.h"
#include "runtime/driver.h"
#include "runtime/identity.h"
#include "runtime/libc.h"
#include "runtime/monitor.h"
#include "runtime/sigthread.h"
#include "runtime/park.h"
#include "runtime/pool.h"
#include "runtime/reactor.h"
#include "runtime/stack.h"
#include "runtime/sched.h"
#include "runtime/stats.h"
#include "runtime/tls.h"

static void say(const char *a, const char *b)
{
    struct iovec v[3] = {{(void *)a, strlen(a)}, {(void *)b, strlen(b)}, {"\n", 1}};
    (void)!writev(2, v, 3);
}

/* The child's only thread is the forking fiber; no carrier came along.
 * The runtime is rebuilt around it, so threads the child starts are fibers
 * again.  If that fails (no memory), the child runs natively. */
static void child_after_fork(void)
{
    struct fz_fiber *self = fz_self();
    fz_rt.active = false;
    if (!self)
        return; /* forked from a thread that is not a fiber */
    fz_park_after_fork();
    fz_pool_after_fork();
    fz_reactor_after_fork();
    fz_fiber_after_fork(self);
    fz_stack_after_fork();
    fz_driver_after_fork();
    if (!fz_sched_after_fork(self))
        say("fiberize: ", "fork child runs without the runtime (out of memory)");
    /* natively the child's only thread is its main thread, nothing pending */
    atomic_store(&self->sig_pending, 0);
    self->cpu_ns = 0; /* a new process's thread CPU clock starts at 0 */
    fz_sigthread_after_fork();
    fz_ident_after_fork(self, getpid());
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
    pthread_atfork(NULL, NULL, child_after_fork);
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
