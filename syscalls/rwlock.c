/* pthread_rwlock_*: readers and writers park the fiber, never the carrier.
 *
 * Process-private locks (which includes the static initializer) use our
 * algorithm on words of the libc's object (syscalls/sync_layout.h says
 * which, and the encoding of `state`: on musl it is musl's own), every
 * operation on them being interposed while the sync family is on:
 *   state            write-locked, or the number of readers holding
 *   writers_waiting  writers between their first failed try and leaving
 *                    the slow path
 *   readers_waiting  readers, the same
 *   owner            tid of the write owner, where the libc answers
 *                    EDEADLK to a write owner's relock (glibc; musl has no
 *                    such check: the relock waits, as natively)
 * Waiters park on the address of `state`, readers and writers told apart by
 * the parking lot's bitset.  Lost wake-ups are excluded Dekker-style: a
 * waiter counts itself in (seq_cst) before the parking lot re-checks
 * `state` under its bucket lock; a releaser changes `state` (seq_cst) before
 * it reads the counts.  Woken waiters retry and may park again (barging is
 * allowed, as in both libcs).  Kinds: only glibc's
 * PREFER_WRITER_NONRECURSIVE makes waiting writers hold back new readers;
 * otherwise readers are preferred (glibc treats PREFER_WRITER_NP like the
 * default; musl has no kinds), so readers may recurse.  Unlock of an
 * unlocked lock returns 0 and no ownership is checked, as in glibc.
 *
 * Process-shared locks live in memory another process also drives with
 * the libc's own code, so they keep the libc's encoding and real
 * functions; only the blocking wait is replaced: one real attempt that
 * keeps the libc's checks (fz_rwlock_real_try: EDEADLK, EAGAIN) and, while
 * it would block, a timed sleep of the fiber (backoff 50 µs to 1 ms).
 * Non-fiber callers of shared locks use the real blocking call.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include "runtime/park.h"
#include "runtime/tls.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync_layout.h"

#define PARK_READER 1u
#define PARK_WRITER 2u

static bool reader_must_wait(const struct fz_rwlock_words *l, unsigned state)
{
    if (fz_rw_write_locked(state))
        return true;
    return l->prefers_writers && atomic_load(l->writers_waiting) != 0;
}

/* ---- private locks: our algorithm ------------------------------------ */

static int try_read(const struct fz_rwlock_words *l)
{
    unsigned s = atomic_load(l->state);
    for (;;) {
        if (reader_must_wait(l, s))
            return EBUSY;
        if (fz_rw_readers(s) == FZ_RW_READERS_FULL)
            return EAGAIN;
        if (atomic_compare_exchange_weak(l->state, &s, s + 1))
            return 0;
    }
}

static int try_write(const struct fz_rwlock_words *l)
{
    unsigned expected = 0;
    if (!atomic_compare_exchange_strong(l->state, &expected, FZ_RW_WRITE_LOCKED))
        return EBUSY;
    if (l->owner)
        atomic_store_explicit(l->owner, fz_tcb_current_tid(), memory_order_relaxed);
    return 0;
}

static bool reader_still_blocked(void *ctx)
{
    const struct fz_rwlock_words *l = ctx;
    return reader_must_wait(l, atomic_load(l->state));
}

static bool writer_still_blocked(void *ctx)
{
    const struct fz_rwlock_words *l = ctx;
    return atomic_load(l->state) != 0;
}

static unsigned wake_readers(const struct fz_rwlock_words *l)
{
    return fz_unpark_addr(l->state, PARK_READER, UINT_MAX);
}

static unsigned wake_writer(const struct fz_rwlock_words *l)
{
    return fz_unpark_addr(l->state, PARK_WRITER, 1);
}

/* Count ourselves as a waiter, then try and park until we hold the lock,
 * the deadline passes, or the reader count is full. */
static int lock_slow(struct fz_rwlock_words *l, bool write, uint64_t deadline)
{
    atomic_uint *waiting = write ? l->writers_waiting : l->readers_waiting;
    atomic_fetch_add(waiting, 1);
    int err;
    for (;;) {
        err = write ? try_write(l) : try_read(l);
        if (err != EBUSY)
            break;
        if (fz_park_addr(l->state, write ? PARK_WRITER : PARK_READER,
                         write ? writer_still_blocked : reader_still_blocked, l, deadline,
                         FZ_INTR_NONE) == ETIMEDOUT) {
            err = ETIMEDOUT;
            break;
        }
    }
    unsigned left = atomic_fetch_sub(waiting, 1) - 1;
    /* The last waiting writer giving up lets held-back readers in. */
    if (write && err && left == 0 && l->prefers_writers)
        wake_readers(l);
    return err;
}

static int lock_private(struct fz_rwlock_words *l, bool write, uint64_t deadline)
{
    if (l->owner && atomic_load_explicit(l->owner, memory_order_relaxed) == fz_tcb_current_tid())
        return EDEADLK;
    int err = write ? try_write(l) : try_read(l);
    if (err != EBUSY)
        return err;
    return lock_slow(l, write, deadline);
}

/* After the lock became free: a writer first when writers are preferred,
 * else every waiting reader, else one writer. */
static void wake_after_write_unlock(const struct fz_rwlock_words *l)
{
    bool writers = atomic_load(l->writers_waiting) != 0;
    bool readers = atomic_load(l->readers_waiting) != 0;
    if (writers && l->prefers_writers && wake_writer(l))
        return;
    if (readers && wake_readers(l))
        return;
    if (writers)
        wake_writer(l);
}

static int unlock_private(const struct fz_rwlock_words *l)
{
    unsigned s = atomic_load(l->state);
    if (fz_rw_write_locked(s)) {
        if (l->owner)
            atomic_store_explicit(l->owner, 0, memory_order_relaxed);
        atomic_store(l->state, 0);
        wake_after_write_unlock(l);
        return 0;
    }
    if (fz_rw_readers(s) == 0)
        return 0; /* not locked: glibc says 0 too */
    s = atomic_fetch_sub(l->state, 1) - 1;
    if (s == 0 && atomic_load(l->writers_waiting) != 0)
        wake_writer(l);
    return 0;
}

/* ---- process-shared locks: the libc's encoding, polled ---------------- */

static int lock_shared(pthread_rwlock_t *rw, bool write, uint64_t deadline)
{
    struct fz_backoff backoff = fz_backoff_begin(FZ_BACKOFF_WAIT_FIRST_NS);
    for (;;) {
        int err = fz_rwlock_real_try(rw, write);
        if (err != EBUSY)
            return err;
        if (fz_backoff_sleep(&backoff, deadline, FZ_INTR_NONE) == FZ_BACKOFF_EXPIRED)
            return ETIMEDOUT;
    }
}

/* ---- entry points ---------------------------------------------------- */

/* An invalid time: glibc says EINVAL whether or not the call would block;
 * musl tries first and says EINVAL only if it would
 * (FZ_SYNC_TIME_CHECKED_FIRST). */
static int invalid_time(pthread_rwlock_t *rw, bool write)
{
    if (!FZ_SYNC_TIME_CHECKED_FIRST) {
        int err;
        if (fz_rwlock_shared(rw)) {
            err = fz_rwlock_real_try(rw, write);
        } else {
            struct fz_rwlock_words l = fz_rwlock_words(rw);
            err = write ? try_write(&l) : try_read(&l);
        }
        if (err != EBUSY)
            return err;
    }
    return EINVAL;
}

/* clock: CLOCK_REALTIME/MONOTONIC, or -1 for "no deadline". */
static int lock(pthread_rwlock_t *rw, bool write, clockid_t clock, const struct timespec *abs)
{
    if (abs && clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return EINVAL;
    if (abs && !fz_timespec_valid(abs))
        return invalid_time(rw, write);
    uint64_t deadline = abs ? fz_abs_to_deadline(clock, abs) : 0;
    if (fz_rwlock_shared(rw))
        return lock_shared(rw, write, deadline);
    struct fz_rwlock_words l = fz_rwlock_words(rw);
    return lock_private(&l, write, deadline);
}

/* Whether the real function must handle this call. */
static bool pass_through(pthread_rwlock_t *rw)
{
    return !fz_hook_active(FZ_HOOK_SYNC) || (fz_rwlock_shared(rw) && !fz_self());
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
        return fz_rwlock_real_clocklock(rw, false, clock, abs);
    fz_schedule_point();
    return lock(rw, false, clock, abs);
}

FZ_EXPORT int pthread_rwlock_clockwrlock(pthread_rwlock_t *rw, clockid_t clock,
                                         const struct timespec *abs)
{
    if (pass_through(rw))
        return fz_rwlock_real_clocklock(rw, true, clock, abs);
    fz_schedule_point();
    return lock(rw, true, clock, abs);
}

FZ_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t *rw)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || fz_rwlock_shared(rw))
        return fz_real.pthread_rwlock_tryrdlock(rw);
    fz_schedule_point();
    struct fz_rwlock_words l = fz_rwlock_words(rw);
    return try_read(&l);
}

FZ_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t *rw)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || fz_rwlock_shared(rw))
        return fz_real.pthread_rwlock_trywrlock(rw);
    fz_schedule_point();
    struct fz_rwlock_words l = fz_rwlock_words(rw);
    return try_write(&l);
}

FZ_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t *rw)
{
    if (!fz_hook_active(FZ_HOOK_SYNC) || fz_rwlock_shared(rw))
        return fz_real.pthread_rwlock_unlock(rw);
    struct fz_rwlock_words l = fz_rwlock_words(rw);
    return fz_schedule_point_after(unlock_private(&l));
}
