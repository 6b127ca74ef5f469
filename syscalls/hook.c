/* The interposers' settings (see families.h), set by the constructor. */
#include "syscalls/families.h"

struct fz_hook_settings fz_hook_settings = {.families = FZ_HOOK_ALL};
