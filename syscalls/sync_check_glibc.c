/* Before the runtime starts on glibc: the sync layer's glibc facts are the
 * layouts checked at compile time (syscalls/sync_layout_glibc.h) and the
 * one that moved between releases, the condvar's flags word, which
 * runtime/libc_glibc.c finds at start-up; nothing is left to check here. */
#include "syscalls/sync.h"

bool fz_sync_layout_check(const char **why)
{
    (void)why;
    return true;
}
