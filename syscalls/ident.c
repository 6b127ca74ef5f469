/* CPU affinity of threads that are fibers.
 *
 * sched_setaffinity/sched_getaffinity with pid 0 or a fiber's tid, and
 * pthread_setaffinity_np/pthread_getaffinity_np with a fiber's pthread_t,
 * act on the fiber's own mask (runtime/affinity.c), applied to whichever
 * carrier runs it while it runs.  glibc's pthread_* versions would hand the
 * fiber's fake tid to the kernel (ESRCH) and the sched_* ones with pid 0
 * would pin the carrier and with it every fiber that runs there later.
 * Anything that names no fiber goes to the real call.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include "runtime/affinity.h"
#include "runtime/identity.h"
#include "syscalls/hook.h"

static struct fz_fiber *fiber_of_pid(pid_t pid, struct fz_fiber **self)
{
    *self = fz_hook_self(FZ_HOOK_THREAD);
    if (!fz_hook_active(FZ_HOOK_THREAD))
        return NULL;
    if (pid == 0)
        return *self;
    return fz_ident_lookup(pid);
}

static struct fz_fiber *fiber_of_thread(pthread_t th, struct fz_fiber **self)
{
    *self = fz_hook_self(FZ_HOOK_THREAD);
    return fz_hook_thread_fiber(th);
}

/* The kernel's checks -- the size at least its CPU count's worth of bits,
 * in longs (EINVAL); the buffer writable (EFAULT: strace probes with NULL
 * for the size) -- made by the real call on the carrier, into the caller's
 * own buffer, which fz_affinity_get then fills with the fiber's mask. */
static int check_buffer(size_t size, cpu_set_t *set)
{
    if (fz_real.sched_getaffinity(0, size, set) != 0)
        return errno;
    return 0;
}

FZ_EXPORT int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set)
{
    struct fz_fiber *self, *f = fiber_of_pid(pid, &self);
    if (!f)
        return fz_real.sched_setaffinity(pid, size, set);
    int err = fz_affinity_set(f, self, size, set);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

FZ_EXPORT int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
    struct fz_fiber *self, *f = fiber_of_pid(pid, &self);
    if (!f)
        return fz_real.sched_getaffinity(pid, size, set);
    int err = check_buffer(size, set);
    if (!err)
        err = fz_affinity_get(f, size, set);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

FZ_EXPORT int pthread_setaffinity_np(pthread_t th, size_t size, const cpu_set_t *set)
{
    struct fz_fiber *self, *f = fiber_of_thread(th, &self);
    if (!f)
        return fz_real.pthread_setaffinity_np(th, size, set);
    return fz_affinity_set(f, self, size, set);
}

FZ_EXPORT int pthread_getaffinity_np(pthread_t th, size_t size, cpu_set_t *set)
{
    struct fz_fiber *self, *f = fiber_of_thread(th, &self);
    if (!f)
        return fz_real.pthread_getaffinity_np(th, size, set);
    int err = check_buffer(size, set);
    return err ? err : fz_affinity_get(f, size, set);
}
