/* Resolution of the real libc symbols (see real.h).
 *
 * Other libraries' constructors may run before ours (the loader orders
 * constructors by dependencies only, and a preloaded library depends on
 * none of the program's), and they call interposed functions: libselinux's
 * calls fopen before our constructor has run.  So every slot starts out as
 * a forwarding stub that resolves all symbols on first use and then calls
 * the real function with the caller's arguments untouched
 * (__builtin_apply).  After resolution the slots hold the real functions.
 *
 * glibc 2.35's dlsym(RTLD_NEXT, name) answers libc's oldest version of a
 * symbol that has several (pthread_cond_* with the pre-2.3.2 condvar that
 * mallocs a private one, pthread_kill, posix_spawn), where 2.36+ answers
 * the default one the program binds to: a process-shared condvar then
 * waited on a private futex in each process's heap (sync_pshared with the
 * sync hooks off hung on 2.35).  So those few are looked up by their
 * default version (dlvsym; a libc without it falls back to dlsym).
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include "preload/real.h"
#include "runtime/sys.h"

static atomic_int resolved;
static const char *first_missing;

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

static void *next_symbol(const char *name)
{
    for (size_t i = 0; i < sizeof default_versions / sizeof default_versions[0]; i++)
        if (!strcmp(name, default_versions[i].name)) {
            void *p = dlvsym(RTLD_NEXT, name, default_versions[i].version);
            if (p)
                return p;
        }
    return dlsym(RTLD_NEXT, name);
}

/* A symbol this libc lacks: calling it is a bug in the caller's choice of
 * interposer, so say which and stop rather than jump to NULL. */
static void missing_symbol(void)
{
    static const char msg[] = "fiberize: a real libc function is missing\n";
    fz_sys3(SYS_write, 2, msg, sizeof msg - 1);
    _exit(127);
}

static void resolve_all(void)
{
    if (atomic_load_explicit(&resolved, memory_order_acquire))
        return;
    const char *missing = NULL;
#define FZ_REAL_LOOKUP(ret, name, args)                                                            \
    {                                                                                              \
        void *p = next_symbol(#name);                                                              \
        if (!p && !missing)                                                                        \
            missing = #name;                                                                       \
        fz_real.name = (ret(*) args)(p ? p : (void *)missing_symbol);                              \
    }
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_LOOKUP)
#undef FZ_REAL_LOOKUP
    first_missing = missing;
    atomic_store_explicit(&resolved, 1, memory_order_release);
}

/* Stack bytes of arguments to copy: enough for every signature we forward
 * (the longest passes one argument on the stack). */
#define FORWARD_STACK_BYTES 64

#define FZ_REAL_STUB(ret, name, args)                                                              \
    static void stub_##name(void)                                                                  \
    {                                                                                              \
        void *forwarded = __builtin_apply_args();                                                  \
        resolve_all();                                                                             \
        void *result =                                                                             \
            __builtin_apply((void (*)())(void *)fz_real.name, forwarded, FORWARD_STACK_BYTES);     \
        __builtin_return(result);                                                                  \
    }
FZ_REAL_ALL_SYMBOLS(FZ_REAL_STUB)
#undef FZ_REAL_STUB

struct fz_real fz_real = {
#define FZ_REAL_INIT(ret, name, args) .name = (ret(*) args)stub_##name,
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_INIT)
#undef FZ_REAL_INIT
};

int fz_real_resolve(const char **missing)
{
    resolve_all();
    *missing = first_missing;
    return first_missing == NULL;
}
