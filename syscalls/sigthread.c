/* Thread ids and signals sent to one thread, for fibers.
 *
 * gettid() and syscall(SYS_gettid) answer the fiber's own tid (runtime/
 * identity.c: the pid for the main fiber, a unique fake one for others),
 * not the carrier's, which changes as the fiber migrates.  Calls that hand
 * a tid or a pthread_t to the kernel to signal a thread -- pthread_kill,
 * pthread_sigqueue, raise, tgkill/tkill/rt_tgsigqueueinfo (the glibc
 * functions and syscall(2)) -- are translated when they name a fiber: the
 * signal becomes pending on that fiber and its handler runs on it
 * (runtime/sigthread.c).  Anything that names no fiber goes to the real
 * call, which answers ESRCH for a fake tid the kernel does not know.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "runtime/identity.h"
#include "runtime/sigthread.h"
#include "syscalls/hook.h"
#include "syscalls/ident.h"

static bool gone(struct fz_fiber *f)
{
    return atomic_load(&f->exit_word) == FZ_EXIT_REAPED || f->state == FZ_FIBER_DONE;
}

/* libc's own signals (runtime/tls.h) are refused, as glibc does. */
static bool internal_signal(int sig)
{
    return sig > 0 && sig <= 64 && (FZ_LIBC_SIGNALS & fz_sig_bit(sig));
}

/* Send sig (valid, not 0) to live fiber f: 0 or an errno value. */
static int send_to_fiber(struct fz_fiber *f, int sig, const struct fz_sigsend *info)
{
    if (sig == SIGKILL || sig == SIGSTOP) {
        /* they act on the whole process whichever thread gets them */
        long r = fz_sys2(SYS_kill, fz_sys0(SYS_getpid), sig);
        return r < 0 ? (int)-r : 0;
    }
    if (!(f->sigmask & fz_sig_bit(sig)) && fz_signal_discarded(sig))
        return 0; /* natively dropped at once */
    fz_sigthread_send(f, sig, info);
    return 0;
}

FZ_EXPORT int pthread_kill(pthread_t th, int sig)
{
    struct fz_fiber *f = fz_hook_thread_fiber(th);
    if (!f)
        return fz_real.pthread_kill(th, sig);
    if (sig < 0 || sig >= NSIG || internal_signal(sig))
        return EINVAL;
    if (atomic_load(&f->exit_word) == FZ_EXIT_REAPED)
        return ESRCH;
    if (sig == 0 || f->state == FZ_FIBER_DONE)
        return 0; /* glibc: a thread that has exited but is not joined yet */
    return send_to_fiber(f, sig, NULL);
}

FZ_EXPORT int pthread_sigqueue(pthread_t th, int sig, const union sigval value)
{
    struct fz_fiber *f = fz_hook_thread_fiber(th);
    if (!f)
        return fz_real.pthread_sigqueue(th, sig, value);
    if (sig < 0 || sig >= NSIG || internal_signal(sig))
        return EINVAL;
    if (gone(f))
        return ESRCH;
    if (sig == 0)
        return 0;
    struct fz_sigsend info = {SI_QUEUE, (pid_t)fz_sys0(SYS_getpid), (uid_t)fz_sys0(SYS_getuid),
                              value};
    return send_to_fiber(f, sig, &info);
}

FZ_EXPORT int raise(int sig)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    if (!self || sig <= 0 || sig >= NSIG || internal_signal(sig))
        return fz_real.raise(sig);
    int err = send_to_fiber(self, sig, NULL);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

FZ_EXPORT pid_t gettid(void)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    return self ? self->tid : (pid_t)fz_sys0(SYS_gettid);
}

/* ---- names ------------------------------------------------------------- */

/* prctl(PR_SET_NAME/PR_GET_NAME) name the calling thread: the fiber (the
 * same name pthread_setname_np/getname_np keep, syscalls/thread.c), not
 * the carrier.  The main thread's name is also the process's (ps, /proc/
 * self/comm), so the main fiber's is given to the main OS thread too. */
void fz_name_main_thread(const char *name)
{
    int fd = (int)fz_sys4(SYS_openat, AT_FDCWD, "/proc/self/comm", O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return;
    fz_sys3(SYS_write, fd, name, strlen(name));
    fz_sys1(SYS_close, fd);
}

FZ_EXPORT int prctl(int option, ...)
{
    va_list ap;
    va_start(ap, option);
    unsigned long arg[4];
    for (int i = 0; i < 4; i++)
        arg[i] = va_arg(ap, unsigned long);
    va_end(ap);
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    if (self && option == PR_SET_NAME) {
        char name[sizeof self->name];
        const char *from = (const char *)arg[0];
        size_t n = 0;
        while (n < sizeof name - 1 && from[n])
            n++;
        memcpy(name, from, n);
        name[n] = 0;
        fz_spin_lock(&self->lock);
        memcpy(self->name, name, sizeof name);
        fz_spin_unlock(&self->lock);
        if (self->is_main)
            fz_name_main_thread(name);
        return 0;
    }
    if (self && option == PR_GET_NAME) {
        fz_spin_lock(&self->lock);
        memcpy((char *)arg[0], self->name, sizeof self->name);
        fz_spin_unlock(&self->lock);
        return 0;
    }
    return fz_real.prctl(option, arg[0], arg[1], arg[2], arg[3]);
}

/* ---- the tid-taking system calls ------------------------------------- */

static long fail(int err)
{
    errno = err;
    return -1;
}

/* tgid < 0: tkill (any process's thread). */
static bool to_fiber(pid_t tgid, pid_t tid, struct fz_fiber **out)
{
    if (!fz_hook_active(FZ_HOOK_THREAD) || tid <= 0)
        return false;
    if (tgid >= 0 && tgid != (pid_t)fz_sys0(SYS_getpid))
        return false;
    *out = fz_ident_lookup(tid);
    return *out != NULL;
}

static long signal_tid(pid_t tgid, pid_t tid, int sig, const siginfo_t *si)
{
    struct fz_fiber *f;
    if (!to_fiber(tgid, tid, &f)) {
        if (si)
            return fz_real.syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, (long)si, 0, 0);
        if (tgid < 0)
            return fz_real.syscall(SYS_tkill, tid, sig, 0, 0, 0, 0);
        return fz_real.syscall(SYS_tgkill, tgid, tid, sig, 0, 0, 0);
    }
    if (sig < 0 || sig >= NSIG)
        return fail(EINVAL);
    if (gone(f))
        return fail(ESRCH);
    struct fz_sigsend info, *ip = NULL;
    if (si) {
        /* the kernel lets a thread forge kill()'s codes only to itself */
        if ((si->si_code >= 0 || si->si_code == SI_TKILL) && f != fz_self())
            return fail(EPERM);
        info = (struct fz_sigsend){si->si_code, si->si_pid, si->si_uid, si->si_value};
        ip = &info;
    }
    if (sig == 0)
        return 0;
    int err = send_to_fiber(f, sig, ip);
    return err ? fail(err) : 0;
}

FZ_EXPORT int tgkill(pid_t tgid, pid_t tid, int sig)
{
    return (int)signal_tid(tgid, tid, sig, NULL);
}

bool fz_ident_syscall(long number, const long arg[6], long *result)
{
    switch (number) {
    case SYS_gettid:
        *result = gettid();
        return true;
    case SYS_tgkill:
        *result = signal_tid((pid_t)arg[0], (pid_t)arg[1], (int)arg[2], NULL);
        return true;
    case SYS_tkill:
        *result = signal_tid(-1, (pid_t)arg[0], (int)arg[1], NULL);
        return true;
    case SYS_rt_tgsigqueueinfo:
        if (!arg[3])
            return false; /* EFAULT from the kernel */
        *result = signal_tid((pid_t)arg[0], (pid_t)arg[1], (int)arg[2], (const siginfo_t *)arg[3]);
        return true;
    default:
        return false;
    }
}
