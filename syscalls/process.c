/* Waiting for children, and the calls that start and wait for them.
 *
 * A wait first asks the kernel without blocking (WNOHANG); when nothing is
 * ready yet:
 *  - for one child's exit (waitpid(pid > 0), waitid P_PID / P_PIDFD) the
 *    fiber parks on a pidfd in the reactor: it turns readable when the
 *    child exits, and the wait is asked again;
 *  - anything else (any child, a process group, stops and continues, a
 *    kernel without pidfds) waits in the blocking pool.
 * Both are interrupted by signal handlers as natively (SA_RESTART restarts)
 * and are cancellation points.  A wait made with WNOHANG, or by a thread
 * that is not a fiber, is the real call.
 */
#include <errno.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "preload/observe.h"
#include "runtime/reactor.h"
#include "runtime/tls.h"
#include "syscalls/offload.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

FZ_OFFLOAD(static, pid_t, pool_wait4, fz_real.wait4, FZ_OFFLOAD_WAIT, (pid_t, pid), (int *, status),
           (int, options), (struct rusage *, usage))

/* waitid's id types are enums and unsigned; libffi calls this fixed form. */
static int waitid_fixed(int idtype, unsigned id, siginfo_t *info, int options)
{
    return fz_real.waitid((idtype_t)idtype, (id_t)id, info, options);
}

FZ_OFFLOAD(static, int, pool_waitid, waitid_fixed, FZ_OFFLOAD_WAIT, (int, idtype), (unsigned, id),
           (siginfo_t *, info), (int, options))

/* Park on pidfd (readable once the process exited) until done(ctx) says
 * the wait is over.  0, EINTR, or EINVAL if it cannot park on that fd. */
static int wait_on_pidfd(int pidfd, bool (*done)(void *), void *ctx)
{
    struct fz_fd *s = fz_fd_get(pidfd);
    if (!s || fz_fd_kind(s) != FZ_FD_POLLABLE)
        return EINVAL;
    for (;;) {
        struct fz_fd_watch w;
        fz_fd_watch_prepare(&w, s, true, false);
        if (done(ctx))
            return 0;
        if (fz_fd_watch_wait(&w, 1, 0, FZ_INTR_NORESTART | FZ_INTR_CANCEL) == EINTR)
            return EINTR;
    }
}

/* A pidfd of our own for pid, closed with close_own_pidfd; -1 if there is
 * none (old kernel, no such process, out of fds). */
static int open_pidfd(pid_t pid)
{
    int saved = errno;
    long fd = fz_sys2(SYS_pidfd_open, pid, 0);
    errno = saved;
    return fd < 0 ? -1 : (int)fd;
}

static void close_own_pidfd(int fd)
{
    fz_fd_forget(fd);
    fz_sys1(SYS_close, fd);
}

/* Stops and continues do not make a pidfd readable. */
static bool exits_only(int options)
{
    return !(options & (WUNTRACED | WCONTINUED));
}

/* ---- wait4 and the calls built on it ------------------------------------ */

struct wait4_try {
    pid_t pid;
    int *status;
    int options;
    struct rusage *usage;
    pid_t result;
};

static bool wait4_ready(void *ctx)
{
    struct wait4_try *t = ctx;
    t->result = fz_real.wait4(t->pid, t->status, t->options | WNOHANG, t->usage);
    return t->result != 0;
}

static pid_t wait4_one(struct wait4_try *t)
{
    int pidfd = open_pidfd(t->pid);
    if (pidfd < 0)
        return pool_wait4(t->pid, t->status, t->options, t->usage);
    int r = wait_on_pidfd(pidfd, wait4_ready, t);
    close_own_pidfd(pidfd);
    if (r == EINVAL)
        return pool_wait4(t->pid, t->status, t->options, t->usage);
    if (r == EINTR) {
        errno = EINTR;
        fz_cancel_point();
        return -1;
    }
    return t->result;
}

FZ_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage)
{
    if ((options & WNOHANG) || !fz_hook_self(FZ_HOOK_PROCESS))
        return fz_real.wait4(pid, status, options, usage);
    fz_cancel_point();
    struct wait4_try t = {pid, status, options, usage, 0};
    if (wait4_ready(&t))
        return t.result;
    if (pid > 0 && exits_only(options))
        return wait4_one(&t);
    return pool_wait4(pid, status, options, usage);
}

FZ_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
    return wait4(pid, status, options, NULL);
}

FZ_EXPORT pid_t wait(int *status)
{
    return wait4(-1, status, 0, NULL);
}

FZ_EXPORT pid_t wait3(int *status, int options, struct rusage *usage)
{
    return wait4(-1, status, options, usage);
}

/* ---- waitid -------------------------------------------------------------- */

struct waitid_try {
    idtype_t idtype;
    id_t id;
    siginfo_t *info;
    int options;
    int result;
};

/* With WNOHANG, "nothing yet" is success with si_pid left 0. */
static bool waitid_ready(void *ctx)
{
    struct waitid_try *t = ctx;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    t->result = fz_real.waitid(t->idtype, t->id, &si, t->options | WNOHANG);
    if (t->result == 0 && si.si_pid == 0)
        return false;
    if (t->result == 0 && t->info)
        *t->info = si;
    return true;
}

static int waitid_on(struct waitid_try *t, int pidfd, bool own)
{
    int r = wait_on_pidfd(pidfd, waitid_ready, t);
    if (own)
        close_own_pidfd(pidfd);
    if (r == EINVAL)
        return pool_waitid(t->idtype, t->id, t->info, t->options);
    if (r == EINTR) {
        errno = EINTR;
        fz_cancel_point();
        return -1;
    }
    return t->result;
}

FZ_EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
    if ((options & WNOHANG) || !fz_hook_self(FZ_HOOK_PROCESS))
        return fz_real.waitid(idtype, id, info, options);
    fz_cancel_point();
    struct waitid_try t = {idtype, id, info, options, 0};
    int saved = errno;
    if (waitid_ready(&t))
        return t.result;
    errno = saved;
    if (exits_only(options) && !(options & WSTOPPED)) {
        if (idtype == P_PIDFD)
            return waitid_on(&t, (int)id, false);
        int pidfd = idtype == P_PID ? open_pidfd((pid_t)id) : -1;
        if (pidfd >= 0)
            return waitid_on(&t, pidfd, true);
    }
    return pool_waitid(idtype, id, info, options);
}

/* ---- system, posix_spawn and pclose ------------------------------------ */

FZ_OFFLOADED(int, system, FZ_OFFLOAD_SPAWN, (const char *, command))

/* posix_spawn waits until the child has exec'd (glibc clones with
 * CLONE_VFORK): milliseconds a carrier would stand still. */
FZ_OFFLOADED(int, posix_spawn, FZ_OFFLOAD_SPAWN, (pid_t *, pid), (const char *, path),
             (const posix_spawn_file_actions_t *, actions), (const posix_spawnattr_t *, attr),
             (char *const *, argv), (char *const *, envp))

FZ_OFFLOADED(int, posix_spawnp, FZ_OFFLOAD_SPAWN, (pid_t *, pid), (const char *, file),
             (const posix_spawn_file_actions_t *, actions), (const posix_spawnattr_t *, attr),
             (char *const *, argv), (char *const *, envp))

FZ_OFFLOAD(static, int, pool_pclose, fz_real.pclose, FZ_OFFLOAD_PLAIN, (FILE *, stream))

/* pclose closes the stream's fd inside libc: forget it first, as fclose. */
FZ_EXPORT int pclose(FILE *stream)
{
    if (stream && fz_rt.active)
        fz_fd_forget(fileno(stream));
    if (!fz_hook_active(FZ_HOOK_PROCESS))
        return fz_real.pclose(stream);
    return pool_pclose(stream);
}

/* ---- process exit ------------------------------------------------------ */

/* The kernel marks the process-shared robust mutexes a dying process still
 * holds, by the tids of its threads; fibers' tids are not the kernel's, so
 * tls.c does it for them (exit() reaches it through atexit).  A vfork child
 * shares the parent's memory and must leave its mutexes alone. */
FZ_EXPORT void _exit(int status)
{
    if (fz_rt.active && !fz_in_vfork_child())
        fz_tls_process_exit();
    fz_control_remove(); /* exit() does it through atexit */
    for (;;)
        fz_sys6(SYS_exit_group, status, 0, 0, 0, 0, 0);
}

FZ_EXPORT void _Exit(int status) __attribute__((alias("_exit")));
