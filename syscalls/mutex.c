/* pthread mutexes and C11 mtx_* on the parking lot.
 *
 * The lock lives in the program's own pthread_mutex_t, in glibc's layout and
 * encoding, so a mutex stays valid for glibc's init/destroy/consistent
 * (not interposed) and for code that ran before the runtime started:
 *   __lock   0 unlocked, 1 locked, 2 locked and someone may be parked
 *   __owner  locker's tid as glibc records it (fibers: their fake tid)
 *   __count  recursion depth (recursive kind)
 *   __nusers lockers holding it (glibc's destroy answers EBUSY while > 0)
 *   __kind   type in bits 0-1 (normal, recursive, errorcheck, adaptive),
 *            elision hints 256/512 (ignored); any other bit -- robust 16,
 *            priority-inherit 32, priority-protect 64, process-shared 128,
 *            or -1 after destroy -- makes the mutex "special".
 *
 * Simple kinds: uncontended lock and unlock are one atomic each.  A locker
 * that finds it taken spins briefly, marks it contended (2) and parks on
 * the word's address while it stays 2; unlocking from 2 unparks one.  Fibers
 * and threads that are not fibers (pool threads, foreign threads) run the
 * same code -- the parking lot puts the latter to sleep on a futex -- so
 * they can share a mutex.
 *
 * Special kinds keep glibc's implementation (the kernel must see robust
 * lists, PI chains and other processes).  A fiber never blocks a carrier on
 * them: it retries pthread_mutex_trylock, sleeping in between with a backoff
 * growing from 10 us to 1 ms (so it may wait up to 1 ms longer than
 * natively).  A thread that is not a fiber makes the real call, except on
 * a priority-inherit mutex, where it polls the same way: the kernel would
 * look for the owner by its tid, and a fiber's is fake (glibc then waits
 * forever); no priority is inherited through a fiber.  A priority-protect
 * mutex gets the carrier's real tid for glibc's scheduler calls
 * (as_carrier), so it answers as natively; a raised priority (real-time
 * policies only) is the carrier's, and stays with it until an unlock runs
 * there.  A robust mutex held by a fiber that exits is marked owner-dead
 * by runtime/tls_glibc.c, since the kernel walks only carriers' robust lists.
 */
#include <errno.h>
#include <linux/futex.h>
#include <threads.h>
#include "runtime/identity.h"
#include "runtime/park.h"
#include "runtime/sched.h"
#include "runtime/tls.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync.h"

#define KIND_TYPE_MASK 3
#define KIND_ELISION_FLAGS (256 | 512)
#define KIND_ROBUST 16
#define KIND_PI 32
#define KIND_PP 64
#define SPINS 100

enum { UNLOCKED = 0, LOCKED = 1, CONTENDED = 2 };

bool fz_sync_hooked(void)
{
    return fz_hook_active(FZ_HOOK_SYNC);
}

static int kind_of(pthread_mutex_t *m)
{
    return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
}

static bool is_special(int kind)
{
    return (kind & ~(KIND_TYPE_MASK | KIND_ELISION_FLAGS)) != 0;
}

/* ---- the lock word ----------------------------------------------------- */

static bool try_word(int *word)
{
    int expected = UNLOCKED;
    return __atomic_compare_exchange_n(word, &expected, LOCKED, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static bool still_contended(void *word)
{
    return __atomic_load_n((int *)word, __ATOMIC_RELAXED) == CONTENDED;
}

/* A short spin pays when the holder runs on another carrier -- and never
 * when this is the only carrier (FIBERIZE_WORKERS=1, --seed): the holder
 * cannot run until this fiber parks.  It was 70 % of a --seed condvar
 * ping-pong's time. */
static bool spin_for_word(int *word)
{
    if (fz_rt.target <= 1 && !atomic_load_explicit(&fz_rt.spares_running, memory_order_relaxed))
        return false;
    for (int i = 0; i < SPINS; i++) {
        fz_cpu_relax();
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == UNLOCKED && try_word(word))
            return true;
    }
    return false;
}

/* Take the word, parking while it is held.  deadline: 0 = forever.
 * 0, or ETIMEDOUT (the word is then not ours). */
static int lock_word_slow(int *word, uint64_t deadline)
{
    if (spin_for_word(word))
        return 0;
    while (__atomic_exchange_n(word, CONTENDED, __ATOMIC_ACQUIRE) != UNLOCKED) {
        if (deadline && fz_now_ns() >= deadline)
            return ETIMEDOUT;
        fz_park_addr(word, ~0u, still_contended, word, deadline, FZ_INTR_NONE);
    }
    return 0;
}

static void unlock_word(int *word)
{
    if (__atomic_exchange_n(word, UNLOCKED, __ATOMIC_RELEASE) == CONTENDED)
        fz_unpark_addr(word, ~0u, 1);
}

/* ---- simple kinds ------------------------------------------------------ */

/* The caller already owns m: the answer for a recursive or errorcheck
 * mutex, or -1 to go on (a normal mutex then deadlocks, as natively). */
static int relock_by_owner(pthread_mutex_t *m, int type, bool trying)
{
    if (type == PTHREAD_MUTEX_RECURSIVE) {
        if (m->__data.__count + 1 == 0)
            return EAGAIN;
        m->__data.__count++;
        return 0;
    }
    if (type == PTHREAD_MUTEX_ERRORCHECK)
        return trying ? EBUSY : EDEADLK;
    return -1;
}

static void became_owner(pthread_mutex_t *m, int type, pid_t me)
{
    m->__data.__owner = me;
    if (type == PTHREAD_MUTEX_RECURSIVE)
        m->__data.__count = 1;
    m->__data.__nusers++;
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
static bool holder_waits_for_cpu(const pthread_mutex_t *m)
{
    pid_t owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
    if (owner == 0)
        return false;
    struct fz_fiber *holder = fz_ident_lookup(owner);
    return holder && __atomic_load_n(&holder->state, __ATOMIC_RELAXED) == FZ_FIBER_RUNNABLE;
}

static bool try_again_after_holder(pthread_mutex_t *m)
{
    struct fz_fiber *self = fz_self();
    if (!self || !holder_waits_for_cpu(m))
        return false;
    fz_yield(self);
    return try_word(&m->__data.__lock);
}

static int lock_simple(pthread_mutex_t *m, int kind, const struct lock_wait *how)
{
    int type = kind & KIND_TYPE_MASK;
    pid_t me = fz_tcb_current_tid();
    if (type != PTHREAD_MUTEX_NORMAL && type != PTHREAD_MUTEX_ADAPTIVE_NP &&
        m->__data.__owner == me) {
        int r = relock_by_owner(m, type, how->trying);
        if (r >= 0)
            return r;
    }
    if (!try_word(&m->__data.__lock) && !(how->trying && try_again_after_holder(m))) {
        if (how->trying)
            return EBUSY;
        uint64_t deadline = 0;
        if (how->abs) {
            if (!fz_timespec_valid(how->abs))
                return EINVAL;
            if (how->abs->tv_sec < 0)
                return ETIMEDOUT;
            deadline = fz_abs_to_deadline(how->clock, how->abs);
        }
        if (lock_word_slow(&m->__data.__lock, deadline))
            return ETIMEDOUT;
    }
    became_owner(m, type, me);
    return 0;
}

static int unlock_simple(pthread_mutex_t *m, int kind)
{
    int type = kind & KIND_TYPE_MASK;
    if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) {
        if (m->__data.__owner != fz_tcb_current_tid())
            return EPERM;
        if (type == PTHREAD_MUTEX_RECURSIVE && --m->__data.__count != 0)
            return 0;
    }
    m->__data.__owner = 0;
    m->__data.__nusers--;
    unlock_word(&m->__data.__lock);
    return 0;
}

/* ---- special kinds: glibc's code, without blocking a carrier ----------- */

/* Priority-protect mutexes: glibc hands the caller's tid to
 * sched_getparam and sched_setscheduler, where a fiber's fake tid is ESRCH.
 * For the length of one glibc call that cannot block (trylock, unlock) the
 * TCB names the carrier as the kernel knows it, while the mutex goes on
 * naming the fiber as its owner, so an unlock after a migration is still
 * the owner's.  Returns the fiber's tid to restore, 0 if nothing changed. */
static pid_t as_carrier(pthread_mutex_t *m, int kind)
{
    if (!(kind & KIND_PP))
        return 0;
    struct fz_fiber *self = fz_self();
    if (!self)
        return 0;
    pid_t fake = fz_tcb_current_tid(), real = self->carrier->tid;
    fz_tcb_set_current_tid(real);
    if (m->__data.__owner == fake)
        m->__data.__owner = real;
    return fake;
}

static void as_fiber(pthread_mutex_t *m, pid_t fake)
{
    if (!fake)
        return;
    if (m->__data.__owner == fz_tcb_current_tid())
        m->__data.__owner = fake;
    fz_tcb_set_current_tid(fake);
}

static int real_trylock(pthread_mutex_t *m, int kind)
{
    pid_t fake = as_carrier(m, kind);
    int r = fz_real.pthread_mutex_trylock(m);
    as_fiber(m, fake);
    return r;
}

static int real_unlock(pthread_mutex_t *m, int kind)
{
    pid_t fake = as_carrier(m, kind);
    int r = fz_real.pthread_mutex_unlock(m);
    as_fiber(m, fake);
    return r;
}

static int real_lock(pthread_mutex_t *m, const struct lock_wait *how)
{
    if (how->trying)
        return real_trylock(m, kind_of(m));
    if (how->abs)
        return fz_real.pthread_mutex_clocklock(m, how->clock, how->abs);
    return fz_real.pthread_mutex_lock(m);
}

/* glibc's trylock answers ENOTRECOVERABLE with the word still holding the
 * caller's tid, where its lock releases the word first.  A lock made of
 * trylocks must release it too, or the next locker waits forever. */
static int unrecoverable(pthread_mutex_t *m, int kind)
{
    int *word = &m->__data.__lock;
    int seen = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (kind & KIND_PI)
        return ENOTRECOVERABLE; /* glibc's own PI path */
    while ((seen & FUTEX_TID_MASK) == fz_tcb_current_tid())
        if (__atomic_compare_exchange_n(word, &seen, 0, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
            if (seen & FUTEX_WAITERS)
                fz_futex_wake_shared(word, 1);
            break;
        }
    return ENOTRECOVERABLE;
}

static int lock_special(pthread_mutex_t *m, int kind, const struct lock_wait *how)
{
    /* A thread that is not a fiber may block in glibc, except on a
     * priority-inherit mutex: its owner may be a fiber, whose fake tid the
     * kernel would never find (glibc then waits forever), so it polls too. */
    if (how->trying || (!fz_self() && !(kind & KIND_PI)))
        return real_lock(m, how);
    if (how->abs && !fz_timespec_valid(how->abs))
        return real_lock(m, how); /* EINVAL, or success without waiting */
    uint64_t deadline = how->abs ? fz_abs_to_deadline(how->clock, how->abs) : 0;
    struct fz_backoff backoff = fz_backoff_begin(FZ_BACKOFF_LOCK_FIRST_NS);
    for (;;) {
        int r = real_trylock(m, kind);
        if (r == ENOTRECOVERABLE && (kind & KIND_ROBUST))
            return unrecoverable(m, kind);
        if (r != EBUSY)
            return r;
        if ((kind & KIND_TYPE_MASK) == PTHREAD_MUTEX_ERRORCHECK &&
            m->__data.__owner == fz_tcb_current_tid())
            return EDEADLK;
        if (fz_backoff_sleep(&backoff, deadline, FZ_INTR_NONE) == FZ_BACKOFF_EXPIRED)
            return ETIMEDOUT;
    }
}

/* ---- entry points ------------------------------------------------------ */

static int lock_with(pthread_mutex_t *m, const struct lock_wait *how)
{
    int kind = kind_of(m);
    return is_special(kind) ? lock_special(m, kind, how) : lock_simple(m, kind, how);
}

int fz_mutex_lock(pthread_mutex_t *m)
{
    struct lock_wait forever = {false, CLOCK_REALTIME, NULL};
    return lock_with(m, &forever);
}

int fz_mutex_unlock(pthread_mutex_t *m)
{
    int kind = kind_of(m);
    return is_special(kind) ? real_unlock(m, kind) : unlock_simple(m, kind);
}

static bool clock_supported(clockid_t clock)
{
    return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
}

/* Normal and adaptive kinds, uncontended: the common case, kept short. */
static bool is_plain(int kind)
{
    int type = kind & KIND_TYPE_MASK;
    return !is_special(kind) && (type == PTHREAD_MUTEX_NORMAL || type == PTHREAD_MUTEX_ADAPTIVE_NP);
}

FZ_EXPORT int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (!fz_sync_hooked())
        return fz_real.pthread_mutex_lock(m);
    fz_schedule_point();
    int kind = kind_of(m);
    if (is_plain(kind) && try_word(&m->__data.__lock)) {
        became_owner(m, PTHREAD_MUTEX_NORMAL, fz_tcb_current_tid());
        return 0;
    }
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

FZ_EXPORT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock,
                                      const struct timespec *abs)
{
    if (!fz_sync_hooked())
        return fz_real.pthread_mutex_clocklock(m, clock, abs);
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
    int kind = kind_of(m);
    if (is_plain(kind))
        return fz_schedule_point_after(unlock_simple(m, kind));
    return fz_schedule_point_after(fz_mutex_unlock(m));
}

/* ---- C11: glibc's mtx_t is a pthread_mutex_t ---------------------------- */

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
