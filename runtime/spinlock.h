/* A test-and-test-and-set spinlock for the runtime's short critical
 * sections (queue splices, bucket lists, timer wheel).  It never sleeps in
 * the kernel and touches no TLS, so it is safe on every runtime path; it must
 * only guard a few dozen instructions. */
#ifndef FZ_SPINLOCK_H
#define FZ_SPINLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sched.h>
#include "runtime/sys.h"

typedef struct {
    atomic_int held;
} fz_spinlock;

static inline void fz_spin_lock(fz_spinlock *l)
{
    for (unsigned spins = 0;; spins++) {
        if (!atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
            fz_cpu_relax();
            if (++spins > 4096) { /* holder preempted: let it run */
                fz_sys0(SYS_sched_yield);
                spins = 0;
            }
        }
    }
}

/* One attempt: true when l is now held by the caller. */
static inline bool fz_spin_trylock(fz_spinlock *l)
{
    return !atomic_load_explicit(&l->held, memory_order_relaxed) &&
           !atomic_exchange_explicit(&l->held, 1, memory_order_acquire);
}

static inline void fz_spin_unlock(fz_spinlock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* Held by some thread: for FZ_ASSERT where a function needs the caller to
 * hold l (it cannot tell which thread holds it). */
static inline bool fz_spin_held(fz_spinlock *l)
{
    return atomic_load_explicit(&l->held, memory_order_relaxed) != 0;
}

#endif
