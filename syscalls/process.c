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
#include <sched.h>
#include <stdarg.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "runtime/ownfd.h"
#include "runtime/reactor.h"
#include "runtime/tls.h"
#include "syscalls/offload.h"

#define FZ_XSTR(x) #x
#define FZ_STR(x) FZ_XSTR(x)

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

/* Park on *pidfd (readable once the process exited) until done(ctx) says
 * the wait is over.  0, EINTR, or EINVAL if it cannot park on that fd.
 * The number is read again after every wake: a dup2 onto it moves the fd
 * elsewhere (runtime/ownfd.h), and the old number's state then belongs to
 * the program's file. */
static int wait_on_pidfd(const int *pidfd, bool own, bool (*done)(void *), void *ctx)
{
    for (;;) {
        int fd = __atomic_load_n(pidfd, __ATOMIC_ACQUIRE);
        /* ours is known (blocking, no stream); the program's may have been
         * opened with PIDFD_NONBLOCK, which its later calls must see */
        struct fz_fd *s = own ? fz_fd_get_event_fd(fd) : fz_fd_get(fd);
        if (!s || fz_fd_kind(s) != FZ_FD_POLLABLE)
            return EINVAL;
        struct fz_fd_watch w;
        fz_fd_watch_prepare(&w, s, true, false);
        if (done(ctx))
            return 0;
        if (fz_fd_watch_wait(&w, 1, 0, FZ_INTR_NORESTART | FZ_INTR_CANCEL) == EINTR)
            return EINTR;
    }
}

/* A pidfd of our own for pid, out of the program's reach and released with
 * close_own_pidfd; -1 if there is none (old kernel, no such process, out of
 * fds or high numbers): the caller waits in the pool instead. */
static int open_pidfd(int *pidfd, pid_t pid)
{
    int saved = errno;
    long fd = fz_sys2(SYS_pidfd_open, pid, 0);
    errno = saved;
    *pidfd = (int)fd;
    if (fd < 0 || !fz_ownfd_adopt(pidfd, false))
        return *pidfd = -1;
    return *pidfd;
}

static void close_own_pidfd(int *pidfd)
{
    fz_fd_forget(*pidfd);
    fz_ownfd_release(pidfd);
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
    int pidfd;
    if (open_pidfd(&pidfd, t->pid) < 0)
        return pool_wait4(t->pid, t->status, t->options, t->usage);
    int r = wait_on_pidfd(&pidfd, true, wait4_ready, t);
    close_own_pidfd(&pidfd);
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

static int waitid_on(struct waitid_try *t, int *pidfd, bool own)
{
    int r = wait_on_pidfd(pidfd, own, waitid_ready, t);
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
        int pidfd = (int)id; /* P_PIDFD: the program's own */
        if (idtype == P_PIDFD)
            return waitid_on(&t, &pidfd, false);
        if (idtype == P_PID && open_pidfd(&pidfd, (pid_t)id) >= 0)
            return waitid_on(&t, &pidfd, true);
    }
    return pool_waitid(idtype, id, info, options);
}

/* ---- system and posix_spawn -------------------------------------------- */

FZ_OFFLOADED(int, system, FZ_OFFLOAD_SPAWN, (const char *, command))

/* posix_spawn waits until the child has exec'd (glibc clones with
 * CLONE_VFORK): milliseconds a carrier would stand still. */
FZ_OFFLOADED(int, posix_spawn, FZ_OFFLOAD_SPAWN, (pid_t *, pid), (const char *, path),
             (const posix_spawn_file_actions_t *, actions), (const posix_spawnattr_t *, attr),
             (char *const *, argv), (char *const *, envp))

FZ_OFFLOADED(int, posix_spawnp, FZ_OFFLOAD_SPAWN, (pid_t *, pid), (const char *, file),
             (const posix_spawn_file_actions_t *, actions), (const posix_spawnattr_t *, attr),
             (char *const *, argv), (char *const *, envp))

/* ---- vfork --------------------------------------------------------------- */

/* A vfork child runs on the calling fiber's stack with its TCB loaded, in a
 * task of its own, until it execs or exits; the parent's carrier is
 * suspended meanwhile, the other carriers are not.  Had the child parked
 * (usleep, poll before exec), another carrier would resume the saved
 * context -- the child's code, in the parent process -- and the parent
 * would exec the child's program.  So the child marks the fiber: fz_self()
 * is then NULL, and every interposed call is the real one, until the
 * parent is back and clears the mark.
 *
 * Why assembly: child and parent return through the same stack frame, and
 * the child may overwrite anything in it, the return address included.  As
 * glibc's own vfork does, the return address waits in %rdi (which the
 * kernel preserves) across the system call and is pushed again on each
 * side.  The marks cost one call each, on a path that makes a process. */
__attribute__((used)) void fz_vfork_child_started(void)
{
    struct fz_fiber *f = fz_self();
    if (f)
        f->vfork_child = true;
}

__attribute__((used)) long fz_vfork_parent_resumed(long r)
{
    struct fz_fiber *f = fz_rt.active ? fz_tls_current_fiber() : NULL;
    if (f && f->vfork_child)
        f->vfork_child = false;
    return fz_sys_result(r);
}

__asm__("    .text\n"
        "    .globl vfork\n"
        "    .type vfork, @function\n"
        "    .globl __vfork\n"
        "    .type __vfork, @function\n"
        "vfork:\n"
        "__vfork:\n"
        "    .cfi_startproc\n"
        "    popq %rdi\n"
        "    .cfi_adjust_cfa_offset -8\n"
        "    .cfi_register %rip, %rdi\n"
        "    movl $" FZ_STR(
            SYS_vfork) ", %eax\n"
                       "    syscall\n"
                       "    pushq %rdi\n"
                       "    .cfi_adjust_cfa_offset 8\n"
                       "    .cfi_rel_offset %rip, 0\n"
                       "    subq $8, %rsp\n" /* the calls below want a 16-byte aligned stack */
                       "    .cfi_adjust_cfa_offset 8\n"
                       "    testq %rax, %rax\n"
                       "    jz 1f\n"
                       "    movq %rax, %rdi\n"
                       "    call fz_vfork_parent_resumed\n"
                       "    addq $8, %rsp\n"
                       "    .cfi_adjust_cfa_offset -8\n"
                       "    ret\n"
                       "    .cfi_adjust_cfa_offset 8\n"
                       "1:  call fz_vfork_child_started\n"
                       "    addq $8, %rsp\n"
                       "    .cfi_adjust_cfa_offset -8\n"
                       "    xorl %eax, %eax\n"
                       "    ret\n"
                       "    .cfi_endproc\n"
                       "    .size vfork, .-vfork\n"
                       "    .size __vfork, .-__vfork\n");

/* clone with CLONE_VM | CLONE_VFORK is vfork with a stack of the caller's
 * choosing -- often a buffer on the caller's own stack, where fz_self()
 * would take the child for the fiber.  The child marks the fiber as
 * vfork's does; the parent, suspended meanwhile, clears the mark.  A
 * CLONE_VM child of any other kind (no CLONE_VFORK: it runs alongside the
 * fiber, so no mark can tell them apart; or a stack elsewhere, where
 * fz_in_vfork_child's stack check does not find the mark) turns on the
 * getpid test in fz_in_vfork_child for good.  On a stack of its own, as
 * usual, such a child is no fiber to fz_self() anyway. */
struct clone_start {
    int (*fn)(void *);
    void *arg;
    struct fz_fiber *fiber;
};

static int clone_child(void *p)
{
    struct clone_start *s = p; /* on the suspended parent's stack */
    s->fiber->vfork_child = true;
    return s->fn(s->arg);
}

static bool on_stack_of(struct fz_fiber *f, void *p)
{
    return (char *)p > (char *)f->stack.base && (char *)p <= (char *)fz_stack_top(&f->stack);
}

FZ_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    /* Only the arguments the flags use were passed (clone(2)): the last
     * one lies on the caller's stack, and reading one that is not there
     * reads past the caller's frame (AddressSanitizer says so). */
    bool want_child_tid = flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID);
    bool want_tls = want_child_tid || (flags & CLONE_SETTLS);
    bool want_parent_tid = want_tls || (flags & (CLONE_PARENT_SETTID | CLONE_PIDFD));
    pid_t *parent_tid = NULL, *child_tid = NULL;
    void *tls = NULL;
    va_list ap;
    va_start(ap, arg);
    if (want_parent_tid)
        parent_tid = va_arg(ap, pid_t *);
    if (want_tls)
        tls = va_arg(ap, void *);
    if (want_child_tid)
        child_tid = va_arg(ap, pid_t *);
    va_end(ap);
    struct fz_fiber *self = fz_self();
    bool vm_child = (flags & CLONE_VM) && !(flags & CLONE_THREAD);
    if (!self || !vm_child)
        return fz_real.clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
    if (!(flags & CLONE_VFORK) || (flags & CLONE_SETTLS) || !on_stack_of(self, stack)) {
        atomic_store(&fz_rt.vm_clones, true);
        return fz_real.clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
    }
    struct clone_start s = {fn, arg, self};
    int r = fz_real.clone(clone_child, stack, flags, &s, parent_tid, tls, child_tid);
    self->vfork_child = false;
    return r;
}

/* ---- process exit ------------------------------------------------------ */

void (*fz_exit_hook)(void);

/* The kernel marks the process-shared robust mutexes a dying process still
 * holds, by the tids of its threads; fibers' tids are not the kernel's, so
 * tls_glibc.c does it for them (exit() reaches it through atexit).  A vfork child
 * shares the parent's memory and must leave its mutexes alone. */
FZ_EXPORT void _exit(int status)
{
    if (fz_rt.active && !fz_in_vfork_child()) {
        fz_tls_process_exit();
        fz_det_at_exit(); /* exit() reaches it through atexit */
    }
    if (fz_exit_hook)
        fz_exit_hook(); /* exit() runs the same through atexit */
    for (;;)
        fz_sys6(SYS_exit_group, status, 0, 0, 0, 0, 0);
}

FZ_EXPORT void _Exit(int status) __attribute__((alias("_exit")));
