/* Real-symbol lookup on musl (see real.h).
 *
 * musl has one version of every symbol (no dlvsym, none needed).  The table
 * also lists glibc's extensions and newer calls; musl 1.2.3 lacks the ones
 * below, and a program built against it cannot call them, so their absence
 * must not turn the runtime off.  Their interposers stay exported and are
 * never reached by such a program.  The runtime's own paths must not call
 * their slots (fdhide.c makes close_range as a raw system call).
 */
#include <dlfcn.h>
#include <string.h>
#include "syscalls/real.h"

static const char *const absent_from_musl[] = {
    /* _FORTIFY_SOURCE's longjmp */
    "__longjmp_chk",
    /* glibc 2.34 and 2.35 wrappers of newer system calls */
    "close_range",
    "closefrom",
    "epoll_pwait2",
    /* glibc 2.30 and 2.31 waits on a chosen clock */
    "pthread_clockjoin_np",
    "pthread_cond_clockwait",
    "pthread_mutex_clocklock",
    "pthread_rwlock_clockrdlock",
    "pthread_rwlock_clockwrlock",
    "sem_clockwait",
    /* GNU extensions: musl 1.2.3 has scandir but not scandirat */
    "pthread_sigqueue",
    "scandirat",
    "scandirat64",
};

void *fz_real_lookup(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

bool fz_real_may_lack(const char *name)
{
    for (size_t i = 0; i < sizeof absent_from_musl / sizeof absent_from_musl[0]; i++)
        if (!strcmp(name, absent_from_musl[i]))
            return true;
    return false;
}
