/* Scheduling policy and priority of threads that are fibers.
 *
 * The kernel keeps a policy per OS thread, and a fiber runs on whichever
 * carrier takes it.  glibc's and musl's pthread_getschedparam,
 * pthread_setschedparam and pthread_setschedprio hand the thread's tid to
 * the kernel -- a fiber's is fake -- so a plain
 * pthread_getschedparam(pthread_self()) failed (EPERM on glibc, ESRCH on
 * musl) and every set failed with ESRCH.
 *
 * Here a fiber keeps what it was given (`sched_policy`, `sched_priority`):
 * from its creator, as PTHREAD_INHERIT_SCHED does natively (runtime/
 * fiber.c), or from its own successful set.  A fiber that sets its own --
 * with these calls, or with sched_setscheduler and sched_setparam naming
 * itself (schedpolicy_glibc.c) -- acts on its carrier (README: fibers that
 * run there later inherit it); the kernel makes the checks and gives the
 * errno.  Setting another thread's to anything other
 * than what it has is refused with EPERM, what an unprivileged process
 * gets natively: its carrier is not the caller's to change.  A fiber whose
 * record was never set (the main fiber, a fiber made before any was set)
 * answers with the calling carrier's, which is the process's unless a
 * fiber changed one.
 *
 * pthread_getschedparam answers as each libc does (fz_sched_pthread_get):
 * glibc from a copy in the thread that only the pthread calls update, so
 * that after a sched_setscheduler it still reports what
 * pthread_setschedparam set, natively and here; musl from the kernel.
 *
 * The records are written under the fiber's lock, by the fiber itself or
 * by a pthread_setschedparam naming it with what it has already; others
 * read them under that lock.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include "runtime/identity.h"
#include "runtime/sys.h"
#include "syscalls/hook.h"
#include "syscalls/schedpolicy.h"

int fz_sched_get(struct fz_fiber *f, int *policy, int *priority)
{
    fz_spin_lock(&f->lock);
    bool known = f->sched_known;
    *policy = f->sched_policy;
    *priority = f->sched_priority;
    fz_spin_unlock(&f->lock);
    if (known)
        return 0;
    long p = fz_sys1(SYS_sched_getscheduler, 0);
    if (p < 0)
        return (int)-p;
    struct sched_param param;
    long r = fz_sys2(SYS_sched_getparam, 0, &param);
    if (r < 0)
        return (int)-r;
    *policy = (int)p;
    *priority = param.sched_priority;
    return 0;
}

static void record(struct fz_fiber *f, int policy, int priority)
{
    fz_spin_lock(&f->lock);
    f->sched_policy = policy;
    f->sched_priority = priority;
    f->sched_known = true;
    fz_spin_unlock(&f->lock);
}

/* The kernel's EINVAL cases for a policy and priority it is asked to set. */
static bool valid(int policy, int priority)
{
    int base = policy & ~SCHED_RESET_ON_FORK;
    switch (base) {
    case SCHED_OTHER:
    case SCHED_BATCH:
    case SCHED_IDLE:
    case SCHED_FIFO:
    case SCHED_RR:
        break;
    default:
        return false;
    }
    return priority >= sched_get_priority_min(base) && priority <= sched_get_priority_max(base);
}

int fz_sched_set(struct fz_fiber *f, int policy, int priority, bool only_priority)
{
    int now_policy, now_priority;
    int err = fz_sched_get(f, &now_policy, &now_priority);
    if (err)
        return err;
    if (only_priority)
        policy = now_policy;
    if (!valid(policy, priority))
        return EINVAL;
    if (f != fz_hook_self(FZ_HOOK_THREAD)) /* another thread: only what it has */
        return now_policy == policy && now_priority == priority ? 0 : EPERM;
    struct sched_param param = {.sched_priority = priority};
    long r = only_priority ? fz_sys2(SYS_sched_setparam, 0, &param)
                           : fz_sys3(SYS_sched_setscheduler, 0, policy, &param);
    if (r < 0)
        return (int)-r;
    record(f, policy, priority);
    return 0;
}

FZ_EXPORT int pthread_getschedparam(pthread_t th, int *policy, struct sched_param *param)
{
    struct fz_fiber *f = fz_hook_thread_fiber(th);
    if (!f)
        return fz_real.pthread_getschedparam(th, policy, param);
    int p, prio;
    int err = fz_sched_pthread_get(f, &p, &prio);
    if (err)
        return err;
    *policy = p;
    memset(param, 0, sizeof *param);
    param->sched_priority = prio;
    return 0;
}

FZ_EXPORT int pthread_setschedparam(pthread_t th, int policy, const struct sched_param *param)
{
    struct fz_fiber *f = fz_hook_thread_fiber(th);
    if (!f)
        return fz_real.pthread_setschedparam(th, policy, param);
    int err = fz_sched_set(f, policy, param->sched_priority, false);
    if (!err)
        fz_sched_pthread_set(f, policy, param->sched_priority, false);
    return err;
}

FZ_EXPORT int pthread_setschedprio(pthread_t th, int priority)
{
    struct fz_fiber *f = fz_hook_thread_fiber(th);
    if (!f)
        return fz_real.pthread_setschedprio(th, priority);
    int err = fz_sched_set(f, 0, priority, true);
    if (!err)
        fz_sched_pthread_set(f, 0, priority, true);
    return err;
}
