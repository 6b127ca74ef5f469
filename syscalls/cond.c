/* pthread condition variables and C11 cnd_* on the parking lot.
 *
 * A process-private condvar is ours once initialized the libc's way
 * (PTHREAD_COND_INITIALIZER, pthread_cond_init or cnd_init, not
 * interposed): two words in it that the libc leaves alone while it is
 * private (syscalls/sync_layout.h says which, and where the libc keeps the
 * process-shared flag and the clock):
 *   sequence  bumped by every signal and broadcast
 *   waiters   how many callers are between reading the sequence and
 *             leaving (signals skip the parking lot when it is 0)
 * Neither libc's destroy waits for anything on a private condvar that we
 * would have to keep up: glibc's waits for its own reference count, which
 * we never raise; musl's does nothing.
 *
 * No lost wake-up: a waiter reads the sequence while holding the mutex,
 * then unlocks and parks on the sequence word only while it is unchanged
 * (checked under the parking-lot queue lock); a signaller bumps the word
 * before it unparks under that same lock.  A waiter whose check fails
 * returns at once (a spurious wake-up, which POSIX allows).  Time-outs are
 * checked against the caller's own clock before they are reported, so they
 * are never early.  The mutex is relocked before returning, on time-outs
 * too.  Broadcast wakes every waiter (no requeue onto the mutex).
 *
 * Cancellation: the waits act on a pending cancellation on entry and after
 * relocking the mutex (pthread_testcancel), and pthread_cancel ends a
 * parked wait, so a cancelled waiter unwinds holding the mutex, as POSIX
 * says.
 *
 * Process-shared condition variables keep the libc's implementation: other
 * processes signal them through it.  A fiber must not sleep in it (its
 * carrier would sleep too), so it polls, in the libc's own protocol
 * (fz_cond_shared_wait: glibc's and musl's differ); a signal from this
 * process also unparks it at once (shared_wake).
 *
 * C11: cnd_t is a pthread_cond_t in both libcs, whose cnd_* call their
 * internal functions, never the exported names we interpose: so every
 * cnd_* is interposed here too.
 */
#include <errno.h>
#include <threads.h>
#include "runtime/park.h"
#include "syscalls/hook.h"
#include "syscalls/sync.h"
#include "syscalls/sync_layout.h"

/* Process-shared ones are the libc's, but a fiber polls them. */
static bool takes_real_path(pthread_cond_t *c)
{
    return !fz_sync_hooked() || (fz_cond_shared(c) && !fz_self());
}

struct seq_check {
    unsigned *word;
    unsigned seen;
};

static bool seq_unchanged(void *arg)
{
    struct seq_check *s = arg;
    return __atomic_load_n(s->word, __ATOMIC_SEQ_CST) == s->seen;
}

/* Park until signalled, woken spuriously or past abs (NULL: never).
 * 0 or ETIMEDOUT. */
static int park_on_seq(struct seq_check *s, clockid_t clock, const struct timespec *abs)
{
    for (;;) {
        uint64_t deadline = abs ? fz_sync_deadline(clock, abs) : 0;
        /* a cancellation point: pthread_cancel ends the wait, and the
         * caller acts on it once the mutex is held again */
        if (fz_park_addr(s->word, ~0u, seq_unchanged, s, deadline, FZ_INTR_CANCEL) != ETIMEDOUT)
            return 0;
        if (fz_sync_deadline_passed(clock, abs))
            return ETIMEDOUT;
    }
}

static int cond_wait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                     const struct timespec *abs)
{
    fz_testcancel();
    struct seq_check s = {fz_cond_seq(c), __atomic_load_n(fz_cond_seq(c), __ATOMIC_SEQ_CST)};
    __atomic_fetch_add(fz_cond_waiters(c), 1, __ATOMIC_SEQ_CST);
    int err = fz_mutex_unlock(m);
    if (err) {
        __atomic_fetch_sub(fz_cond_waiters(c), 1, __ATOMIC_SEQ_CST);
        return err;
    }
    int result = park_on_seq(&s, clock, abs);
    __atomic_fetch_sub(fz_cond_waiters(c), 1, __ATOMIC_SEQ_CST);
    err = fz_mutex_lock(m);
    fz_testcancel();
    return err ? err : result;
}

static void cond_wake(pthread_cond_t *c, unsigned how_many)
{
    if (__atomic_load_n(fz_cond_waiters(c), __ATOMIC_SEQ_CST) == 0)
        return;
    __atomic_fetch_add(fz_cond_seq(c), 1, __ATOMIC_SEQ_CST);
    fz_unpark_addr(fz_cond_seq(c), ~0u, how_many);
}

/* A fiber's wait, or a thread's that is not one on a private condvar. */
static int wait_on(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                   const struct timespec *abs)
{
    if (fz_cond_shared(c))
        return fz_cond_shared_wait(c, m, clock, abs);
    return cond_wait(c, m, clock, abs);
}

FZ_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (takes_real_path(c))
        return fz_real.pthread_cond_wait(c, m);
    int err = fz_cond_wait_check(m);
    if (err)
        return err;
    fz_schedule_point();
    return wait_on(c, m, CLOCK_REALTIME, NULL);
}

FZ_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                     const struct timespec *abs)
{
    if (takes_real_path(c))
        return fz_real.pthread_cond_timedwait(c, m, abs);
    int err = fz_cond_wait_check(m);
    if (err)
        return err;
    if (!fz_timespec_valid(abs))
        return EINVAL;
    fz_schedule_point();
    return wait_on(c, m, fz_cond_clock(c), abs);
}

FZ_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                     const struct timespec *abs)
{
    if (takes_real_path(c))
        return fz_cond_real_clockwait(c, m, clock, abs);
    int err = fz_cond_wait_check(m);
    if (err)
        return err;
    if ((clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) || !fz_timespec_valid(abs))
        return EINVAL;
    fz_schedule_point();
    return wait_on(c, m, clock, abs);
}

/* the libc's signal for other processes' waiters, an unpark for our fibers */
static int shared_wake(pthread_cond_t *c, int (*real)(pthread_cond_t *), unsigned how_many)
{
    int r = real(c);
    if (fz_sync_hooked())
        fz_unpark_addr(c, ~0u, how_many);
    return r;
}

FZ_EXPORT int pthread_cond_signal(pthread_cond_t *c)
{
    if (fz_cond_shared(c))
        return shared_wake(c, fz_real.pthread_cond_signal, 1);
    if (takes_real_path(c))
        return fz_real.pthread_cond_signal(c);
    cond_wake(c, 1);
    return fz_schedule_point_after(0);
}

FZ_EXPORT int pthread_cond_broadcast(pthread_cond_t *c)
{
    if (fz_cond_shared(c))
        return shared_wake(c, fz_real.pthread_cond_broadcast, ~0u);
    if (takes_real_path(c))
        return fz_real.pthread_cond_broadcast(c);
    cond_wake(c, ~0u);
    return fz_schedule_point_after(0);
}

/* ---- C11: cnd_t and mtx_t are the pthread objects ---------------------- */

static int thrd_result(int err)
{
    return err == 0 ? thrd_success : err == ETIMEDOUT ? thrd_timedout : thrd_error;
}

FZ_EXPORT int cnd_wait(cnd_t *c, mtx_t *m)
{
    if (takes_real_path((pthread_cond_t *)c))
        return fz_real.cnd_wait(c, m);
    if (fz_cond_wait_check((pthread_mutex_t *)m))
        return thrd_error;
    return thrd_result(cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m, CLOCK_REALTIME, NULL));
}

FZ_EXPORT int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
                            const struct timespec *restrict abs)
{
    if (takes_real_path((pthread_cond_t *)c))
        return fz_real.cnd_timedwait(c, m, abs);
    return thrd_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, abs));
}

FZ_EXPORT int cnd_signal(cnd_t *c)
{
    return thrd_result(pthread_cond_signal((pthread_cond_t *)c));
}

FZ_EXPORT int cnd_broadcast(cnd_t *c)
{
    return thrd_result(pthread_cond_broadcast((pthread_cond_t *)c));
}
