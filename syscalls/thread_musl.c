/* The musl side of syscalls/thread_libc.h, and the thread-level calls musl
 * makes internally where no interposer sees them.
 *
 * musl's libc.so binds its own calls inside itself, so a public function
 * interposed here is not what musl's other functions reach.  Where musl
 * would then do something wrong for a fiber, the public entry is taken:
 *  - pthread_testcancel: musl's looks at its own `cancel` field, which
 *    fibers never set (runtime/tls_musl.c says why: musl's reaction ends
 *    the carrier); the request a fiber got is in the runtime.
 *  - pthread_key_create / tss_create, pthread_key_delete / tss_delete: the
 *    destructor table is private to musl and its walk at deletion sees only
 *    threads on its list; the runtime keeps both for fibers.
 *  - dlopen: musl gives a new module's TLS to the threads on its list only;
 *    the runtime gives it to every fiber after the call.
 *  - abort: musl's raises SIGABRT at the tid in the loaded TCB, a fiber's
 *    fake one, and then crashes when the kernel refuses it; it runs here
 *    with the carrier's real tid loaded for the call, as glibc's abort
 *    (which asks the kernel for the tid) signals the carrier natively.
 *  - set*id and setgroups: musl's broadcast (__synccall) reaches no carrier
 *    running a fiber and, called from a fiber, acts on the caller's OS
 *    thread only; runtime/setxid_musl.c broadcasts by kernel tids.
 * setrlimit also goes through __synccall, but Linux keeps limits per
 * process: musl's acting on the caller alone is the same result.
 */
#include <errno.h>
#include <grp.h>
#include <unistd.h>
#include <string.h>
#include <threads.h>
#include "runtime/asan.h"
#include "runtime/setxid.h"
#include "runtime/tls.h"
#include "syscalls/hook.h"
#include "syscalls/thread_libc.h"

/* musl's getters answer exactly what was set: its pthread_attr_init puts
 * its default stack and guard sizes in, so a size is always "chosen"; only
 * the stack address can be unset (pthread_attr_getstack: EINVAL). */
void fz_read_thread_attr(const pthread_attr_t *attr, struct fz_fiber_attr *a)
{
    memset(a, 0, sizeof *a);
    a->guard_size = (size_t)-1; /* default */
    if (!attr)
        return;
    int state = PTHREAD_CREATE_JOINABLE;
    pthread_attr_getdetachstate(attr, &state);
    a->detached = state == PTHREAD_CREATE_DETACHED;
    pthread_attr_getguardsize(attr, &a->guard_size);
    pthread_attr_getstacksize(attr, &a->stack_size);
    void *low;
    size_t size;
    if (pthread_attr_getstack(attr, &low, &size) == 0 && low) {
        a->user_stack = low;
        a->user_stack_size = size;
    }
}

/* musl's pthread_attr_t has no CPU set (its pthread_getattr_np reports
 * none either). */
void fz_attr_set_affinity(pthread_attr_t *attr, const cpu_set_t *cpus)
{
    (void)attr, (void)cpus;
}

/* Asynchronous type and enabled state act at once, as musl's would. */
static void act_on_cancel(struct fz_fiber *self)
{
    if (!fz_tcb_cancel_pending(self->tcb))
        return;
    fz_asan_no_return();
    fz_tls_thread_exit(PTHREAD_CANCELED, NULL);
}

int fz_cancel_self(pthread_t self)
{
    struct fz_fiber *f = fz_self();
    if (!fz_tcb_request_cancel(self))
        return 0;
    int type = PTHREAD_CANCEL_DEFERRED;
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &type);
    pthread_setcanceltype(type, NULL);
    if (type == PTHREAD_CANCEL_ASYNCHRONOUS)
        act_on_cancel(f);
    return 0;
}

FZ_EXPORT void pthread_testcancel(void)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_THREAD);
    if (!self) {
        fz_real.pthread_testcancel();
        return;
    }
    act_on_cancel(self);
}

FZ_EXPORT int pthread_key_create(pthread_key_t *key, void (*destructor)(void *))
{
    int err = fz_real.pthread_key_create(key, destructor);
    if (!err)
        fz_tls_key_created(*key, destructor);
    return err;
}

FZ_EXPORT int pthread_key_delete(pthread_key_t key)
{
    fz_tls_key_deleted(key);
    return fz_real.pthread_key_delete(key);
}

FZ_EXPORT int tss_create(tss_t *key, tss_dtor_t destructor)
{
    int err = fz_real.tss_create(key, destructor);
    if (err == thrd_success)
        fz_tls_key_created(*key, destructor);
    return err;
}

FZ_EXPORT void tss_delete(tss_t key)
{
    fz_tls_key_deleted(key);
    fz_real.tss_delete(key);
}

FZ_EXPORT void *dlopen(const char *file, int mode)
{
    void *h = fz_real.dlopen(file, mode);
    if (h)
        fz_tls_modules_changed();
    return h;
}

FZ_EXPORT _Noreturn void abort(void)
{
    if (fz_tls_current_fiber())
        fz_tcb_set_current_tid((pid_t)fz_sys0(SYS_gettid));
    fz_real.abort();
    __builtin_unreachable();
}

/* ---- credentials ------------------------------------------------------- */

static int set_ids(long nr, long a, long b, long c)
{
    long r = fz_setxid_broadcast(nr, a, b, c);
    return (int)fz_sys_result(r); /* r: 0 or -errno */
}

FZ_EXPORT int setuid(uid_t uid)
{
    return set_ids(SYS_setuid, uid, 0, 0);
}

FZ_EXPORT int setgid(gid_t gid)
{
    return set_ids(SYS_setgid, gid, 0, 0);
}

FZ_EXPORT int seteuid(uid_t euid)
{
    return set_ids(SYS_setresuid, -1, euid, -1);
}

FZ_EXPORT int setegid(gid_t egid)
{
    return set_ids(SYS_setresgid, -1, egid, -1);
}

FZ_EXPORT int setreuid(uid_t ruid, uid_t euid)
{
    return set_ids(SYS_setreuid, ruid, euid, 0);
}

FZ_EXPORT int setregid(gid_t rgid, gid_t egid)
{
    return set_ids(SYS_setregid, rgid, egid, 0);
}

FZ_EXPORT int setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
    return set_ids(SYS_setresuid, ruid, euid, suid);
}

FZ_EXPORT int setresgid(gid_t rgid, gid_t egid, gid_t sgid)
{
    return set_ids(SYS_setresgid, rgid, egid, sgid);
}

FZ_EXPORT int setgroups(size_t count, const gid_t list[])
{
    return set_ids(SYS_setgroups, (long)count, (long)list, 0);
}
