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
 * sync hooks off hung on 2.35).  So a result that lies in libc is checked
 * against a lookup in libc's own handle, which gives the default version;
 * a result in another library (a later preload) is kept.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>
#include "preload/real.h"
#include "runtime/sys.h"

static atomic_int resolved;
static const char *first_missing;

static void *next_symbol(void *libc, const char *name)
{
    void *next = dlsym(RTLD_NEXT, name);
    void *in_libc = libc ? dlsym(libc, name) : NULL;
    Dl_info a, b;
    if (next && in_libc && next != in_libc && dladdr(next, &a) && dladdr(in_libc, &b) &&
        a.dli_fbase == b.dli_fbase)
        return in_libc;
    return next;
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
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
#define FZ_REAL_LOOKUP(ret, name, args)                                                            \
    {                                                                                              \
        void *p = next_symbol(libc, #name);                                                        \
        if (!p && !missing)                                                                        \
            missing = #name;                                                                       \
        fz_real.name = (ret(*) args)(p ? p : (void *)missing_symbol);                              \
    }
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_LOOKUP)
#undef FZ_REAL_LOOKUP
    if (libc)
        dlclose(libc); /* only the reference NOLOAD took */
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
