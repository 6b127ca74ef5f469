/* glibc's side of syscalls/schedpolicy.h, and sched_getscheduler,
 * sched_getparam, sched_setscheduler, sched_setparam
 * with 0 or a fiber's tid: the fiber's policy and priority as
 * pthread_getschedparam sees them (syscalls/schedpolicy.c), so that the
 * two families agree as they do natively.  glibc only: musl's four answer
 * ENOSYS for any pid (Linux's are per thread, POSIX's per process), and
 * under fiberize they still do.  A pid that names no fiber, a negative one
 * or a NULL sched_param go to the real call.
 */
#include <errno.h>
#include <sched.h>
#include "runtime/identity.h"
#include "syscalls/hook.h"
#include "syscalls/schedpolicy.h"

static struct fz_fiber *fiber_of_pid(pid_t pid)
{
    if (!fz_hook_active(FZ_HOOK_THREAD) || pid < 0)
        return NULL;
    return pid == 0 ? fz_hook_self(FZ_HOOK_THREAD) : fz_ident_lookup(pid);
}

static int fail(int err)
{
    errno = err;
    return -1;
}

FZ_EXPORT int sched_getscheduler(pid_t pid)
{
    struct fz_fiber *f = fiber_of_pid(pid);
    if (!f)
        return fz_real.sched_getscheduler(pid);
    int policy, priority;
    int err = fz_sched_get(f, &policy, &priority);
    return err ? fail(err) : policy;
}

FZ_EXPORT int sched_getparam(pid_t pid, struct sched_param *param)
{
    struct fz_fiber *f = param ? fiber_of_pid(pid) : NULL;
    if (!f)
        return fz_real.sched_getparam(pid, param);
    int policy, priority;
    int err = fz_sched_get(f, &policy, &priority);
    if (err)
        return fail(err);
    param->sched_priority = priority;
    return 0;
}

FZ_EXPORT int sched_setscheduler(pid_t pid, int policy, const struct sched_param *param)
{
    struct fz_fiber *f = param ? fiber_of_pid(pid) : NULL;
    if (!f)
        return fz_real.sched_setscheduler(pid, policy, param);
    int err = fz_sched_set(f, policy, param->sched_priority, false);
    return err ? fail(err) : 0;
}

FZ_EXPORT int sched_setparam(pid_t pid, const struct sched_param *param)
{
    struct fz_fiber *f = param ? fiber_of_pid(pid) : NULL;
    if (!f)
        return fz_real.sched_setparam(pid, param);
    int err = fz_sched_set(f, 0, param->sched_priority, true);
    return err ? fail(err) : 0;
}

/* glibc's struct pthread keeps schedpolicy and schedparam with a flag for
 * each (ATTR_FLAG_POLICY_SET, ATTR_FLAG_SCHED_SET): pthread_getschedparam
 * asks the kernel only for what is not there yet, and keeps the answer. */
enum { CACHED_PRIORITY = 1, CACHED_POLICY = 2 };

int fz_sched_pthread_get(struct fz_fiber *f, int *policy, int *priority)
{
    fz_spin_lock(&f->lock);
    uint8_t cached = f->sched_cached;
    *policy = f->cached_policy;
    *priority = f->cached_priority;
    fz_spin_unlock(&f->lock);
    if (cached == (CACHED_PRIORITY | CACHED_POLICY))
        return 0;
    int kernel_policy, kernel_priority;
    int err = fz_sched_get(f, &kernel_policy, &kernel_priority);
    if (err)
        return EPERM; /* glibc's answer when the kernel's fails */
    if (!(cached & CACHED_POLICY))
        *policy = kernel_policy;
    if (!(cached & CACHED_PRIORITY))
        *priority = kernel_priority;
    fz_sched_pthread_set(f, *policy, *priority, false);
    return 0;
}

void fz_sched_pthread_set(struct fz_fiber *f, int policy, int priority, bool only_priority)
{
    fz_spin_lock(&f->lock);
    f->cached_priority = priority;
    f->sched_cached |= CACHED_PRIORITY;
    if (!only_priority) {
        f->cached_policy = policy;
        f->sched_cached |= CACHED_POLICY;
    }
    fz_spin_unlock(&f->lock);
}
