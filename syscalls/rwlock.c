/* pthread_rwlock_*: readers and writers park the fiber, never the carrier.
 *
 * Process-private locks (glibc's __shared == 0, which includes both static
 * initializers) use our own encoding inside glibc's 56-byte object, every
 * operation on them being interposed while the sync family is on:
 *   __readers        state: WRITE_LOCKED bit | number of readers holding
 *   __writers        writers waiting (between their first failed try and
 *                    leaving the slow path)
 *   __wrphase_futex  readers waiting (same)
 *   __cur_writer     tid of the write owner (glibc's EDEADLK check)
 *   __flags          the kind, as glibc's init and initializers store it
 * Waiters park on the address of `state`, readers and writers told apart by
 * the parking lot's bitset.  Lost wake-ups are excluded Dekker-style: a
 * waiter counts itself in (seq_cst) before the parking lot re-checks
 * `state` under its bucket lock; a releaser changes `state` (seq_cst) before
 * it reads the counts.  Woken waiters retry and may park again (barging is
 * allowed, as in glibc).  Kinds: only PREFER_WRITER_NONRECURSIVE makes
 * waiting writers hold back new readers; the other kinds prefer readers
 * (glibc treats PREFER_WRITER_NP like the default), so readers may recurse.
 * glibc returns 0 from unlock of an unlocked lock and checks no ownership;
 * so do we.
 *
 * Process-shared locks (__shared != 0) live in memory another process also
 * drives with glibc's own code, so they keep glibc's encoding and real
 * functions; only the blocking wait is replaced: a real lock attempt with an
 * already expired deadline (which keeps every glibc check: EDEADLK, EAGAIN)
 * and, while it times out, a timed sleep of the fiber (backoff 50 µs to
 * 1 ms).  Non-fiber callers of shared locks use the real blocking call.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include "runtime/park.h"
#include "runtime/tls.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"

/* glibc's struct __pthread_rwlock_arch_t (x86_64, the same from 2.34 to 2.42) as we use it. */
struct rwlock {
    atomic_uint state;
    atomic_uint writers_waiting;
    atomic_uint readers_waiting;
    unsigned writers_futex, pad3, pad4;
    atomic_int owner;
    int shared;
    signed char elision;
    unsigned char pad1[7];
    unsigned long pad2;
    unsigned flags;
};
_Static_assert(sizeof(struct rwlock) <= sizeof(pthread_rwlock_t), "rwlock layout");
_Static_assert(offsetof(struct rwlock, flags) == offsetof(pthread_rwlock_t, __data.__flags),
               "rwlock flags offset");
_Static_assert(offsetof(struct rwlock, shared) == offsetof(pthread_rwlock_t, __data.__shared),
               "rwlock shared offset");

#define WRITE_LOCKED 0x80000000u
#define READERS_MASK 0x3fffffffu /* a full count answers EAGAIN */
#define PARK_READER 1u
#define PARK_WRITER 2u

static struct rwlock *as_lock(pthread_rwlock_t *rw)
{
    return (struct rwlock *)rw;
}

static bool prefers_writers(const struct rwlock *l)
{
    return l->flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

static bool reader_must_wait(struct rwlock *l, unsigned state)
{
    if (state & WRITE_LOCKED)
        return true;
    return prefers_writers(l) && atomic_load(&l->writers_waiting) != 0;
}

/* ---- private locks: our encoding ------------------------------------- */

static int try_read(struct rwlock *l)
{
    unsigned s = atomic_load(&l->state);
    for (;;) {
        if (reader_must_wait(l, s))
            return EBUSY;
        if ((s & READERS_MASK) == READERS_MASK)
            return EAGAIN;
        if (atomic_compare_exchange_weak(&l->state, &s, s + 1))
            return 0;
    }
}

static int try_write(struct rwlock *l)
{
    unsigned expected = 0;
    if (!atomic_compare_exchange_strong(&l->state, &expected, WRITE_LOCKED))
        return EBUSY;
    atomic_store_explicit(&l->owner, fz_tcb_current_tid(), memory_order_relaxed);
    return 0;
}

static bool reader_still_blocked(void *ctx)
{
    struct rwlock *l = ctx;
    return reader_must_wait(l, atomic_load(&l->state));
}

static bool writer_still_blocked(void *ctx)
{
    struct rwlock *l = ctx;
    return atomic_load(&l->state) != 0;
}

static unsigned wake_readers(struct rwlock *l)
{
    return fz_unpark_addr(&l->state, PARK_READER, UINT_MAX);
}

static unsigned wake_writer(struct rwlock *l)
{
    return fz_unpark_addr(&l->state, PARK_WRITER, 1);
}

/* Count ourselves as a waiter, then try and park until we hold the lock,
 * the deadline passes, or the reader count is full. */
static int lock_slow(struct rwlock *l, bool write, uint64_t deadline)
{
    atomic_uint *waiting = write ? &l->writers_waiting : &l->readers_waiting;
    atomic_fetch_add(waiting, 1);
    int err;
    for (;;) {
        err = write ? try_write(l) : try_read(l);
        if (err != EBUSY)
            break;
        if (fz_park_addr(&l->state, write ? PARK_WRITER : PARK_READER,
                         write ? writer_still_blocked : reader_still_blocked, l, deadline,
                         FZ_INTR_NONE) == ETIMEDOUT) {
            err = ETIMEDOUT;
            break;
        }
    }
    unsigned left = atomic_fetch_sub(waiting, 1) - 1;
    /* The last waiting writer giving up lets held-back readers in. */
    if (write && err && left == 0 && prefers_writers(l))
        wake_readers(l);
    return err;
}

static int lock_private(struct rwlock *l, bool write, uint64_t deadline)
{
    if (atomic_load_explicit(&l->owner, memory_order_relaxed) == fz_tcb_current_tid())
        return EDEADLK;
    int err = write ? try_write(l) : try_read(l);
    if (err != EBUSY)
        return err;
    return lock_slow(l, write, deadline);
}

/* After the lock became free: a writer first when writers are preferred,
 * else every waiting reader, else one writer. */
static void wake_after_write_unlock(struct rwlock *l)
{
    bool writers = atomic_load(&l->writers_waiting) != 0;
    bool readers = atomic_load(&l->readers_waiting) != 0;
    if (writers && prefers_writers(l) && wake_writer(l))
        return;
    if (readers && wake_readers(l))
        return;
    if (writers)
        wake_writer(l);
}

static int unlock_private(struct rwlock *l)
{
    unsigned s = atomic_load(&l->state);
    if (s & WRITE_LOCKED) {
        atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
        atomic_store(&l->state, 0);
        wake_after_write_unlock(l);
        return 0;
    }
    if ((s & READERS_MASK) == 0)
        return 0; /* not locked: glibc says 0 too */
    s = atomic_fetch_sub(&l->state, 1) - 1;
    if (s == 0 && atomic_load(&l->writers_waiting) != 0)
        wake_writer(l);
    return 0;
}

/* ---- process-shared locks: glibc's encoding, polled ------------------ */

static int lock_shared(pthread_rwlock_t *rw, bool write, uint64_t deadline)
{
    static const struct timespec expired = {0, 0};
    struct fz_backoff backoff = fz_backoff_begin(FZ_BACKOFF_WAIT_FIRST_NS);
    for (;;) {
        int err = write ? fz_real.pthread_rwlock_clockwrlock(rw, CLOCK_MONOTONIC, &expired)
                        : fz_real.pthread_rwlock_clockrdlock(rw, CLOCK_MONOTONIC, &expired);
        if (err != ETIMEDOUT)
            return err;
        if (fz_backoff_sleep(&backoff, deadline, FZ_INTR_NONE) == FZ_BACKOFF_EXPIRED)
            return ETIMEDOUT;
    }
}

/* ---- entry points ---------------------------------------------------- */

static bool is_shared(pthread_rwlock_t *rw)
{
    return as_lock(rw)->shared != 0;
}

/* clock: CLOCK_REALTIME/MONOTONIC, or -1 for "no deadline".  EINVAL
 * comes first, whether or not the call would block (glibc's order). */
static int lock(pthread_rwlock_t *rw, bool write, clockid_t clock, const struct timespec *abs)
{
    if (abs && ((clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) || !fz_timespec_valid(abs)))
        return EINVAL;
    uint64_t deadline = abs ? fz_abs_to_deadline(clock, abs) : 0;
    if (is_shared(rw))
        return lock_shared(rw, write, deadline);
    return lock_private(as_lock(rw), write, deadline);
}

/* Whether the real function must handle this call. */
static bool pass_through(pthread_rwlock_t *rw)
{
    return !fz_hook_active(FZ_HOOK_SYNC) || (is_shared(rw) && !fz_self());
}

FZ_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t *rw)
{
    if (pass_through(rw))
        return fz_real.pthread_rwlock_rdlock(rw);
    fz_schedule_point();
    return lock(rw, false, -1, NULL);
}

FZ_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t *rw)
{
    if (pass_through(rw))
        return fz_real.pthread_rwlock_wrlock(rw);
    fz_schedule_point();
    return lock(rw, true, -1, NULL);
}

FZ_EXPORT int pthread_rwlock_timedrdlock(pthread_rwlock_t *rw, const struct timespec *abs)
{
    if (pass_through(rw))
        return fz_real.pthread_rwlock_timedrdlock(rw, abs);
    fz_schedule_point();
    return lock(rw, false, CLOCK_REALTIME, abs);
}

FZ_EXPORT int pthread_rwlock_timedwrlock(pthread_rwlock_t *rw, const struct timespec *abs)
{
    if (pass_through(rw))
        return fz_real.pthread_rwlock_timedwrlock(rw, abs);
    fz_schedule_point();
    return lock(rw, true, CLOCK_REALTIME, abs);
}

FZ_EXPORT int pthread_rwlock_clockrdlock(pthread_rwlock_t *rw, clockid_t clock,
                                         const struct timespec *abs)
{
    if (pass_through(rw))
        return fz_real.pthread_rwlock_clockrdlock(rw, clock, abs);
    fz_schedule_point();
    return lock(rw, false, clock, abs);
}

FZ_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clock,
                                         const struct timespec *abs)
{
    if (pass_through(rw))
        return fz_real.pthread_rwlock_clockwrlock(rw, clock, abs);
    fz_schedule_point();
    return lock(rw, true, clock, abs);
}

FZ_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || is_shared(rw))
        return fz_real.pthread_rwlock_tryrdlock(rw);
    fz_schedule_point();
    return try_read(as_lock(rw));
}

FZ_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *rw)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || is_shared(rw))
        return fz_real.pthread_rwlock_trywrlock(rw);
    fz_schedule_point();
    return try_write(as_lock(rw));
}

FZ_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || is_shared(rw))
        return fz_real.pthread_rwlock_unlock(rw);
    return fz_schedule_point_after(unlock_private(as_lock(rw)));
}
