/* Looking inside a running program: the dump signal and the control socket.
 *
 * Nothing here exists unless asked for (FIBERIZE_DUMP_SIGNAL, or
 * FIBERIZE_CONTROL / `fiberize --control`): then one observer OS thread is
 * started, which sleeps in poll(2) and does the work.  A signal handler
 * must not dump (it may have interrupted a carrier holding a runtime lock,
 * or malloc's), so the dump signal's handler only writes to an eventfd the
 * observer polls; the observer then runs runtime/dump.c's engine.
 *
 * libunwind (glibc only: runtime/unwind.h) is loaded here, privately
 * (dlopen RTLD_LOCAL), on the first dump: linked normally it would put its
 * own _Unwind_RaiseException & co in the program's global scope ahead of
 * libgcc_s, changing how every C++ exception and thread cancellation of the
 * program unwinds.
 *
 * Ownership: the observer thread owns everything in this file after
 * start-up, except `wake_fd`, which the signal handler writes (a raw
 * write(2): no TLS, no locks).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "preload/config.h"
#include "preload/observe.h"
#include "syscalls/real.h"
#include "runtime/ownfd.h"
#include "runtime/dump.h"
#include "runtime/unwind.h"
#include "runtime/sched.h"
#include "runtime/sys.h"

static int wake_fd = -1;
static struct fz_unwinder unwinder;
static bool unwinder_tried;

static atomic_int handlers_running;

static void on_dump_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handlers_running, 1);
    uint64_t one = 1;
    fz_sys3(SYS_write, wake_fd, &one, sizeof one);
    atomic_fetch_sub(&handlers_running, 1);
}

/* The dump samples running fibers: not while this handler still runs on
 * one of them (its frames would hide the fiber's). */
static void handlers_done(void)
{
    struct timespec nap = {0, 200 * 1000};
    for (int i = 0; i < 50 && atomic_load(&handlers_running); i++)
        fz_sys2(SYS_nanosleep, &nap, 0);
    fz_sys2(SYS_nanosleep, &nap, 0); /* and out of the trampoline */
}

static bool load_unwinder(void)
{
    if (unwinder_tried)
        return unwinder.step != NULL;
    unwinder_tried = true;
    if (!fz_unwind_library)
        return false; /* this libc's dumps walk frame pointers instead */
    void *h = dlopen(fz_unwind_library, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return false;
    struct fz_unwinder u = {
        .init_local2 = (int (*)(void *, void *, int))dlsym(h, "_ULx86_64_init_local2"),
        .step = (int (*)(void *))dlsym(h, "_ULx86_64_step"),
        .get_reg = (int (*)(void *, int, unsigned long *))dlsym(h, "_ULx86_64_get_reg"),
        .get_proc_name =
            (int (*)(void *, char *, size_t, unsigned long *))dlsym(h, "_ULx86_64_get_proc_name"),
        .is_signal_frame = (int (*)(void *))dlsym(h, "_ULx86_64_is_signal_frame"),
    };
    if (!u.init_local2 || !u.step || !u.get_reg || !u.get_proc_name || !u.is_signal_frame)
        return false;
    unwinder = u;
    return true;
}

/* One line to stderr: "fiberize: <what> (<the error>)<then>". */
static void tell(const char *what, int err, const char *then)
{
    char line[768];
    int n = snprintf(line, sizeof line, "fiberize: %s (%s)%s\n", what, strerror(err), then);
    if (n > 0)
        fz_sys3(SYS_write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Where a dump goes: FIBERIZE_DUMP_FILE (appended, created 0600), or the
 * given fd (stderr), with a line saying why when the file cannot be opened.
 * Returns the fd and whether to close it. */
static int dump_target(int fallback, bool *close_it)
{
    *close_it = false;
    if (!fz_config.dump_file[0])
        return fallback;
    int fd = (int)fz_sys4(SYS_open, fz_config.dump_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                          0600, 0);
    if (fd < 0) {
        char what[600];
        snprintf(what, sizeof what, "cannot open FIBERIZE_DUMP_FILE \"%s\"", fz_config.dump_file);
        tell(what, -fd, "; this dump goes to stderr instead");
        return fallback;
    }
    *close_it = true;
    return fd;
}

void fz_observe_dump(int fd)
{
    struct fz_dump_settings s = {
        .unwinder = load_unwinder() ? &unwinder : NULL,
        .sigaction = fz_real.sigaction,
    };
    fz_dump_setup(&s);
    fz_dump_write(fd);
}

static void *observer_main(void *arg)
{
    (void)arg;
    /* Signals are the program's threads' business -- but the dump signal
     * may come here when every fiber blocks it. */
    uint64_t mask = ~0ull & ~(1ull << 31) & ~(1ull << 32);
    if (fz_config.dump_signal)
        mask &= ~(1ull << (fz_config.dump_signal - 1));
    fz_sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8);
    for (;;) {
        struct pollfd p[2] = {{wake_fd, POLLIN, 0}, {fz_control_fd(), POLLIN, 0}};
        int np = p[1].fd >= 0 ? 2 : 1;
        long r = fz_sys3(SYS_poll, p, np, -1);
        if (r < 0)
            continue;
        if (p[0].revents & POLLIN) {
            uint64_t count;
            fz_sys3(SYS_read, wake_fd, &count, sizeof count);
            handlers_done();
            bool close_it;
            int fd = dump_target(2, &close_it);
            fz_observe_dump(fd);
            if (close_it)
                fz_sys1(SYS_close, fd);
        }
        if (np > 1 && (p[1].revents & POLLIN))
            fz_control_serve();
    }
    return NULL;
}

void fz_observe_start(void)
{
    if (!fz_config.dump_signal && !fz_config.control)
        return;
    const char *off = "; FIBERIZE_DUMP_SIGNAL and the control socket are off";
    long fd = fz_sys2(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        tell("cannot create the observer's eventfd", (int)-fd, off);
        return;
    }
    wake_fd = (int)fd;
    fz_ownfd_adopt(&wake_fd, true); /* out of the program's reach */
    if (fz_config.control)
        fz_control_open();
    /* The thread first: a dump signal whose handler only rings an eventfd
     * nobody reads, or a socket nobody accepts on (`fiberize dump` would
     * wait for ever), would be settings that do nothing. */
    pthread_t t;
    int err = fz_os_thread_start(&t, NULL, observer_main, NULL);
    if (err) {
        tell("cannot start the observer thread", err, off);
        fz_control_close();
        return;
    }
    if (fz_config.dump_signal) {
        struct sigaction act;
        memset(&act, 0, sizeof act);
        act.sa_handler = on_dump_signal;
        act.sa_flags = SA_RESTART;
        fz_real.sigaction(fz_config.dump_signal, &act, NULL);
    }
}
