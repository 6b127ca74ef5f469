/* pthread_spin_lock: spin briefly, then let other fibers run.
 *
 * A fiber spinning natively would be fine (the holder runs on another CPU),
 * but under fiberize the holder may be a fiber queued on the spinner's own
 * carrier: spinning forever would then never let it run.  So a fiber spins
 * a little and then yields (fz_yield: it stays runnable, nothing blocks),
 * and tries again.  The lock word is the libc's: every attempt is the real
 * pthread_spin_trylock, so init, trylock, unlock and destroy stay the
 * libc's own (not interposed) and process-shared spinlocks need nothing
 * special.  Only what a free lock looks like differs by libc
 * (syscalls/sync_layout.h).
 * Non-fiber callers spin in the real pthread_spin_lock.
 */
#include <errno.h>
#include "runtime/sched.h"
#include "syscalls/hook.h"
#include "syscalls/sync_layout.h"

#define SPINS_BEFORE_YIELD 100

FZ_EXPORT int pthread_spin_lock(pthread_spinlock_t *lock)
{
    struct fz_fiber *self = fz_hook_self(FZ_HOOK_SYNC);
    if (!self)
        return fz_real.pthread_spin_lock(lock);
    for (;;) {
        for (int i = 0; i < SPINS_BEFORE_YIELD; i++) {
            /* read first: trying writes the cache line the holder needs */
            if (fz_spin_looks_free(*lock) && fz_real.pthread_spin_trylock(lock) == 0)
                return 0;
            fz_cpu_relax();
        }
        fz_yield(self);
    }
}
