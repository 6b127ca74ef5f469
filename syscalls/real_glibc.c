/* Real-symbol lookup on glibc (see real.h).
 *
 * glibc 2.35's dlsym(RTLD_NEXT, name) answers libc's oldest version of a
 * symbol that has several (pthread_cond_* with the pre-2.3.2 condvar that
 * mallocs a private one, pthread_kill, posix_spawn), where 2.36+ answers
 * the default one the program binds to: a process-shared condvar then
 * waited on a private futex in each process's heap (sync_pshared with the
 * sync hooks off hung on 2.35).  So those few are looked up by their
 * default version (dlvsym).
 *
 * Every name in the table exists in the glibcs fiberize supports (2.35 and
 * later): none may be missing.
 */
#include <dlfcn.h>
#include <string.h>
#include "syscalls/real.h"

/* The interposed symbols glibc also keeps older versions of whose code
 * differs, with the default version a program built today binds to. */
static const struct {
    const char *name, *version;
} default_versions[] = {
    {"pthread_cond_wait", "GLIBC_2.3.2"},   {"pthread_cond_timedwait", "GLIBC_2.3.2"},
    {"pthread_cond_signal", "GLIBC_2.3.2"}, {"pthread_cond_broadcast", "GLIBC_2.3.2"},
    {"pthread_kill", "GLIBC_2.34"},         {"posix_spawn", "GLIBC_2.15"},
    {"posix_spawnp", "GLIBC_2.15"},
};

void *fz_real_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof default_versions / sizeof default_versions[0]; i++)
        if (!strcmp(name, default_versions[i].name)) {
            void *p = dlvsym(RTLD_NEXT, name, default_versions[i].version);
            if (p)
                return p;
        }
    return dlsym(RTLD_NEXT, name);
}

bool fz_real_may_lack(const char *name)
{
    (void)name;
    return false;
}
