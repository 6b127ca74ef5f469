/* Entering namespaces from a program that is one thread again.
 *
 * The kernel lets only a single-threaded process unshare its user
 * namespace (or its thread group, signal handlers or memory) and setns
 * into a user namespace, and only a thread that shares its filesystem
 * context with no other enter a mount namespace; otherwise EINVAL.  A
 * program that has joined all its threads natively meets neither rule.
 * Fiberized, its carriers and the monitor would still be there, so these
 * first shrink the runtime back to the main thread's OS thread
 * (runtime/sched.c, fz_sched_shrink), which does nothing while another
 * thread of the program lives -- natively the call fails then too.  The
 * call itself is the real one, on the calling OS thread.
 */
#include <sched.h>
#include "runtime/sched.h"
#include "runtime/sys.h"
#include "syscalls/hook.h"

/* unshare flags the kernel refuses to a process with other threads */
#define NEEDS_ONE_THREAD (CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)

FZ_EXPORT int unshare(int flags)
{
    if ((flags & NEEDS_ONE_THREAD) && fz_hook_self(FZ_HOOK_THREAD))
        fz_sched_shrink();
    return (int)fz_sys_result(fz_sys1(SYS_unshare, flags));
}

/* Which namespace fd names is the kernel's to know (nstype 0 accepts any),
 * so every setns from the main fiber tries the shrink. */
FZ_EXPORT int setns(int fd, int nstype)
{
    if (fz_hook_self(FZ_HOOK_THREAD))
        fz_sched_shrink();
    return (int)fz_sys_result(fz_sys2(SYS_setns, fd, nstype));
}
