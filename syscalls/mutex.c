/* pthread mutexes and C11 mtx_* on the parking lot.
 *
 * The lock lives in the program's own pthread_mutex_t, in the libc's own
 * layout and encoding (syscalls/sync_layout.h says where and how, for
 * glibc and for musl), so a mutex stays valid for the libc's
 * init/destroy/consistent (not interposed) and for code that ran before
 * the runtime started.
 *
 * Simple kinds (normal, recursive, errorcheck, glibc's adaptive; private,
 * not robust, not priority-inheriting or -protecting): uncontended lock and
 * unlock are one atomic each.  A locker that finds it taken spins briefly,
 * then parks on the lock word's address while the libc side says it may
 * (on glibc the word is marked contended; on musl parked lockers count
 * themselves in a word musl leaves unused), and an unlock that releases it
 * unparks one.  Fibers and threads that are not fibers (pool threads,
 * foreign threads) run the same code -- the parking lot puts the latter to
 * sleep on a futex -- so they can share a mutex.
 *
 * Special kinds keep the libc's implementation (the kernel must see robust
 * lists, PI chains and other processes).  A fiber never blocks a carrier on
 * them: it retries pthread_mutex_trylock, sleeping in between with a backoff
 * growing from 10 us to 1 ms (so it may wait up to 1 ms longer than
 * natively).  A thread that is not a fiber makes the real call, except on
 * a priority-inherit mutex, where it polls the same way: the kernel would
 * look for the owner by its tid, and a fiber's is fake (the libc then waits
 * forever); no priority is inherited through a fiber.  A priority-protect
 * mutex (glibc only: musl has none) gets the carrier's real tid for glibc's
 * scheduler calls (fz_mutex_pp_enter), so it answers as natively; a raised
 * priority (real-time policies only) is the carrier's, and stays with it
 * until an unlock runs there.  A robust mutex held by a fiber that exits is
 * marked owner-dead by the runtime (runtime/tls_glibc.c), since the kernel
 * walks only carriers' robust lists.
 *
 * C11: both libcs' mtx_t is a pthread_mutex_t.  glibc's mtx_* and musl's
 * call the libc's internal lock functions, never the exported names we
 * interpose, so every mtx_* is interposed here too.
 */
#include <errno.h>
#include <threads.h>
#include "runtime/identity.h"
#include "runtime/park.h"
#include "runtime/sched.h"
#include "runtime/tls.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync.h"
#include "syscalls/sync_layout.h"

#define SPINS 100

/* ---- simple kinds ------------------------------------------------------ */

/* A short spin pays when the holder runs on another carrier -- and never
 * when this is the only carrier (FIBERIZE_WORKERS=1, --seed): the holder
 * cannot run until this fiber parks.  It was 70 % of a --seed condvar
 * ping-pong's time. */
static bool spin_for_lock(pthread_mutex_t *m, int kind, pid_t me)
{
    if (fz_rt.target <= 1 && !atomic_load_explicit(&fz_rt.spares_running, memory_order_relaxed))
        return false;
    int *word = fz_mutex_word(m);
    for (int i = 0; i < SPINS; i++) {
        fz_cpu_relax();
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0 && fz_mutex_try(m, kind, me, true) == 0)
            return true;
    }
    return false;
}

/* Take it, parking while it is held.  deadline: 0 = forever.
 * 0, or ETIMEDOUT (the mutex is then not ours). */
static int lock_slow(pthread_mutex_t *m, int kind, pid_t me, uint64_t deadline)
{
    if (spin_for_lock(m, kind, me))
        return 0;
    int *word = fz_mutex_word(m);
    fz_mutex_wait_begin(m);
    int r;
    while ((r = fz_mutex_take_waiting(m, kind, me)) == EBUSY) {
        if (deadline && fz_now_ns() >= deadline) {
            r = ETIMEDOUT;
            break;
        }
        fz_park_addr(word, ~0u, fz_mutex_may_park, word, deadline, FZ_INTR_NONE);
    }
    fz_mutex_wait_end(m);
    return r;
}

/* How a lock call may wait: not at all (trylock), forever, or until an
 * absolute time on a clock (checked only once the call would block). */
struct lock_wait {
    bool trying;
    clockid_t clock;
    const struct timespec *abs; /* NULL: forever */
};

/* A trylock that finds the mutex held by a fiber that is runnable but not
 * running -- typically one the caller just woke, waiting in this carrier's
 * LIFO slot -- lets it run first and tries once more.  Natively the holder
 * runs on another CPU meanwhile and has usually let go by the time the
 * caller tries; here it may not run until the caller gives up its carrier.
 * MariaDB's kill path (trylock, broadcast, 50 ms nap, up to 20 times per
 * connection) stalled on every connection of a shutdown once one victim
 * held the lock this way (issue 19; tests/bats/sched_lifo.bats).  Either
 * answer is one a native run can give, and a failing trylock costs one
 * tid lookup more. */
static bool holder_waits_for_cpu(pthread_mutex_t *m)
{
    pid_t owner = fz_mutex_owner(m);
    if (owner == 0)
        return false;
    struct fz_fiber *holder = fz_ident_lookup(owner);
    return holder && __atomic_load_n(&holder->state, __ATOMIC_RELAXED) == FZ_FIBER_RUNNABLE;
}

static bool try_again_after_holder(pthread_mutex_t *m, int kind, pid_t me)
{
    struct fz_fiber *self = fz_self();
    if (!self || !holder_waits_for_cpu(m))
        return false;
    fz_yield(self);
    return fz_mutex_try(m, kind, me, true) == 0;
}

static int lock_simple(pthread_mutex_t *m, int kind, const struct lock_wait *how)
{
    pid_t me = fz_tcb_current_tid();
    int r = fz_mutex_try(m, kind, me, how->trying);
    if (r != EBUSY)
        return r;
    if (how->trying)
        return try_again_after_holder(m, kind, me) ? 0 : EBUSY;
    uint64_t deadline = 0;
    if (how->abs) {
        if (!fz_timespec_valid(how->abs))
            return EINVAL;
        if (how->abs->tv_sec < 0)
            return ETIMEDOUT;
        deadline = fz_abs_to_deadline(how->clock, how->abs);
    }
    return lock_slow(m, kind, me, deadline);
}

/* Inlined into pthread_mutex_unlock: as a call of its own it was a sixth
 * of an uncontended lock + unlock pair (bench/mutex.c). */
static inline __attribute__((always_inline)) int unlock_simple(pthread_mutex_t *m, int kind)
{
    bool wake;
    int r = fz_mutex_release(m, kind, fz_tcb_current_tid(), &wake);
    if (wake)
        fz_unpark_addr(fz_mutex_word(m), ~0u, 1);
    return r;
}

/* ---- special kinds: the libc's code, without blocking a carrier -------- */

static int real_trylock(pthread_mutex_t *m, int kind)
{
    pid_t fake = fz_mutex_pp_enter(m, kind);
    int r = fz_real.pthread_mutex_trylock(m);
    fz_mutex_pp_leave(m, fake);
    return r;
}

static int real_unlock(pthread_mutex_t *m, int kind)
{
    pid_t fake = fz_mutex_pp_enter(m, kind);
    int r = fz_real.pthread_mutex_unlock(m);
    fz_mutex_pp_leave(m, fake);
    return r;
}

static int real_lock(pthread_mutex_t *m, const struct lock_wait *how)
{
    if (how->trying)
        return real_trylock(m, fz_mutex_kind(m));
    if (how->abs)
        return fz_mutex_real_clocklock(m, how->clock, how->abs);
    return fz_real.pthread_mutex_lock(m);
}

static int lock_special(pthread_mutex_t *m, int kind, const struct lock_wait *how)
{
    /* A thread that is not a fiber may block in the libc, except on a
     * priority-inherit mutex: its owner may be a fiber, whose fake tid the
     * kernel would never find (the libc then waits forever), so it polls
     * too. */
    if (how->trying || (!fz_self() && !fz_mutex_pi(kind)))
        return real_lock(m, how);
    if (how->abs && !fz_timespec_valid(how->abs))
        return real_lock(m, how); /* EINVAL, or success without waiting */
    uint64_t deadline = how->abs ? fz_abs_to_deadline(how->clock, how->abs) : 0;
    struct fz_backoff backoff = fz_backoff_begin(FZ_BACKOFF_LOCK_FIRST_NS);
    for (;;) {
        int r = real_trylock(m, kind);
        if (r == ENOTRECOVERABLE && fz_mutex_robust(kind))
            return fz_mutex_unrecoverable(m, kind);
        if (r != EBUSY)
            return r;
        if (fz_mutex_type(kind) == PTHREAD_MUTEX_ERRORCHECK &&
            fz_mutex_owner(m) == fz_tcb_current_tid())
            return EDEADLK;
        if (fz_backoff_sleep(&backoff, deadline, FZ_INTR_NONE) == FZ_BACKOFF_EXPIRED)
            return ETIMEDOUT;
    }
}

/* ---- entry points ------------------------------------------------------ */

static int lock_with(pthread_mutex_t *m, const struct lock_wait *how)
{
    int kind = fz_mutex_kind(m);
    return fz_mutex_special(kind) ? lock_special(m, kind, how) : lock_simple(m, kind, how);
}

int fz_mutex_lock(pthread_mutex_t *m)
{
    struct lock_wait forever = {false, CLOCK_REALTIME, NULL};
    return lock_with(m, &forever);
}

/* Inlined into pthread_mutex_unlock (see unlock_simple). */
static inline __attribute__((always_inline)) int unlock_any(pthread_mutex_t *m)
{
    int kind = fz_mutex_kind(m);
    return fz_mutex_special(kind) ? real_unlock(m, kind) : unlock_simple(m, kind);
}

int fz_mutex_unlock(pthread_mutex_t *m)
{
    return unlock_any(m);
}

static bool clock_supported(clockid_t clock)
{
    return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
}

FZ_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (!fz_sync_hooked())
        return fz_real.pthread_mutex_lock(m);
    fz_schedule_point();
    if (fz_mutex_take_plain(m, fz_mutex_kind(m)))
        return 0;
    return fz_mutex_lock(m);
}

FZ_EXPORT int pthread_mutex_trylock(pthread_mutex_t *m)
{
    if (!fz_sync_hooked())
        return fz_real.pthread_mutex_trylock(m);
    fz_schedule_point();
    struct lock_wait trying = {true, CLOCK_REALTIME, NULL};
    return lock_with(m, &trying);
}

/* (musl has no pthread_mutex_clocklock: the libc side makes the real one
 * from its timed lock.) */
FZ_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock,
                                      const struct timespec *abs)
{
    if (!fz_sync_hooked())
        return fz_mutex_real_clocklock(m, clock, abs);
    if (!clock_supported(clock))
        return EINVAL;
    fz_schedule_point();
    struct lock_wait until = {false, clock, abs};
    return lock_with(m, &until);
}

FZ_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    if (!fz_sync_hooked())
        return fz_real.pthread_mutex_timedlock(m, abs);
    fz_schedule_point();
    struct lock_wait until = {false, CLOCK_REALTIME, abs};
    return lock_with(m, &until);
}

FZ_EXPORT int pthread_mutex_unlock(pthread_mutex_t *m)
{
    if (!fz_sync_hooked())
        return fz_real.pthread_mutex_unlock(m);
    return fz_schedule_point_after(unlock_any(m));
}

/* ---- C11: mtx_t is a pthread_mutex_t ---------------------------------- */

static int thrd_result(int err)
{
    switch (err) {
    case 0:
        return thrd_success;
    case EBUSY:
        return thrd_busy;
    case ETIMEDOUT:
        return thrd_timedout;
    default:
        return thrd_error;
    }
}

FZ_EXPORT int mtx_lock(mtx_t *m)
{
    if (!fz_sync_hooked())
        return fz_real.mtx_lock(m);
    fz_schedule_point();
    return thrd_result(fz_mutex_lock((pthread_mutex_t *)m));
}

FZ_EXPORT int mtx_trylock(mtx_t *m)
{
    if (!fz_sync_hooked())
        return fz_real.mtx_trylock(m);
    return thrd_result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

FZ_EXPORT int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict abs)
{
    if (!fz_sync_hooked())
        return fz_real.mtx_timedlock(m, abs);
    return thrd_result(pthread_mutex_timedlock((pthread_mutex_t *)m, abs));
}

FZ_EXPORT int mtx_unlock(mtx_t *m)
{
    if (!fz_sync_hooked())
        return fz_real.mtx_unlock(m);
    return fz_schedule_point_after(thrd_result(fz_mutex_unlock((pthread_mutex_t *)m)));
}
