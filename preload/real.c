/* Resolution of the real libc symbols (see real.h). */
#include <dlfcn.h>
#include <stddef.h>
#include "preload/real.h"

struct fz_real fz_real;

int fz_real_resolve(const char **missing)
{
#define FZ_REAL_LOOKUP(ret, name, args)                                                            \
    fz_real.name = (ret(*) args)dlsym(RTLD_NEXT, #name);                                           \
    if (!fz_real.name) {                                                                           \
        *missing = #name;                                                                          \
        return 0;                                                                                  \
    }
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_LOOKUP)
#undef FZ_REAL_LOOKUP
    return 1;
}
