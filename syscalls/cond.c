/* pthread condition variables and C11 cnd_* on the parking lot.
 *
 * The program's 48-byte pthread_cond_t is used as glibc initializes it
 * (PTHREAD_COND_INITIALIZER and pthread_cond_init/cnd_init, not
 * interposed, zero it and set __wrefs bit 0 for process-shared, bit 1 for
 * CLOCK_MONOTONIC; __wrefs moved in glibc 2.41, its place comes from
 * runtime/libc.h); the interposers then own its first 8 bytes:
 *   word 0  sequence: bumped by every signal and broadcast
 *   word 1  waiters: how many callers are between reading the sequence and
 *           leaving (signals skip the parking lot when it is 0)
 * glibc's destroy only waits for its own reference count in __wrefs, which
 * these never raise, so it returns at once as it should when nobody waits.
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
 * Process-shared condition variables keep glibc's implementation: other
 * processes signal them through it.  A fiber must not sleep in it (its
 * carrier would sleep too), so it polls (shared_wait): glibc's timed wait
 * with a time limit already past registers it, takes a signal if one is
 * pending and returns at once -- on a private dummy mutex, so glibc never
 * locks or unlocks the caller's, whose waiters may be parked fibers.  With
 * no signal the fiber unlocks the mutex, naps, relocks it and returns 0: a
 * spurious wake-up, which POSIX allows and every caller re-checks its
 * predicate after.  A signal sent during the nap is not lost for that
 * reason: the signaller changed the predicate first; one from this
 * process also ends the nap (it is a park on the condvar's address).  The
 * nap grows from 20 us to 1 ms while a fiber's polls find nothing, so a
 * long wait costs about a thousand short wake-ups a second.
 */
#include <errno.h>
#include <threads.h>
#include "runtime/libc.h"
#include "runtime/park.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync.h"

#define COND_SHARED 1u
#define COND_MONOTONIC 2u

static unsigned *seq_word(pthread_cond_t *c)
{
    return (unsigned *)c;
}

static unsigned *waiters_word(pthread_cond_t *c)
{
    return (unsigned *)c + 1;
}

static unsigned cond_flags(pthread_cond_t *c)
{
    /* __wrefs: byte 36 up to glibc 2.40, 28 since (runtime/libc_glibc.c) */
    return __atomic_load_n(&FZ_AT(c, fz_libc.cond_flags, unsigned), __ATOMIC_RELAXED);
}

/* Process-shared ones are glibc's, but a fiber polls them (shared_wait). */
static bool takes_real_path(pthread_cond_t *c)
{
    return !fz_sync_hooked() || ((cond_flags(c) & COND_SHARED) && !fz_self());
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

static bool deadline_passed(clockid_t clock, const struct timespec *abs)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return fz_timespec_ns(&now) >= fz_timespec_ns(abs);
}

/* Park until signalled, woken spuriously or past abs (NULL: never).
 * 0 or ETIMEDOUT. */
static int park_on_seq(struct seq_check *s, clockid_t clock, const struct timespec *abs)
{
    for (;;) {
        uint64_t deadline = abs ? fz_abs_to_deadline(clock, abs) : 0;
        /* a cancellation point: pthread_cancel ends the wait, and the
         * caller acts on it once the mutex is held again */
        if (fz_park_addr(s->word, ~0u, seq_unchanged, s, deadline, FZ_INTR_CANCEL) != ETIMEDOUT)
            return 0;
        if (deadline_passed(clock, abs))
            return ETIMEDOUT;
    }
}

static int cond_wait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                     const struct timespec *abs)
{
    fz_testcancel();
    struct seq_check s = {seq_word(c), __atomic_load_n(seq_word(c), __ATOMIC_SEQ_CST)};
    __atomic_fetch_add(waiters_word(c), 1, __ATOMIC_SEQ_CST);
    int err = fz_mutex_unlock(m);
    if (err) {
        __atomic_fetch_sub(waiters_word(c), 1, __ATOMIC_SEQ_CST);
        return err;
    }
    int result = park_on_seq(&s, clock, abs);
    __atomic_fetch_sub(waiters_word(c), 1, __ATOMIC_SEQ_CST);
    err = fz_mutex_lock(m);
    fz_testcancel();
    return err ? err : result;
}

#define SHARED_NAP_MIN_NS 20000u
#define SHARED_NAP_MAX_NS FZ_BACKOFF_MAX_NS

static int shared_wait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                       const struct timespec *abs)
{
    struct fz_fiber *self = fz_self();
    fz_testcancel();
    pthread_mutex_t dummy = PTHREAD_MUTEX_INITIALIZER;
    struct timespec past = {0, 0};
    fz_real.pthread_mutex_lock(&dummy);
    int r = fz_real.pthread_cond_clockwait(c, &dummy, CLOCK_MONOTONIC, &past);
    fz_real.pthread_mutex_unlock(&dummy);
    if (r == 0) {
        self->shared_nap_ns = 0;
        fz_testcancel();
        return 0;
    }
    if (abs && deadline_passed(clock, abs))
        return ETIMEDOUT;
    uint64_t nap = self->shared_nap_ns ? self->shared_nap_ns * 2 : SHARED_NAP_MIN_NS;
    self->shared_nap_ns = nap > SHARED_NAP_MAX_NS ? SHARED_NAP_MAX_NS : (unsigned)nap;
    uint64_t wake = fz_now_ns() + self->shared_nap_ns;
    uint64_t deadline = abs ? fz_abs_to_deadline(clock, abs) : 0;
    int err = fz_mutex_unlock(m);
    if (err)
        return err;
    /* a signaller in this process also unparks us at once (shared_wake) */
    fz_park_addr(c, ~0u, NULL, NULL, deadline && deadline < wake ? deadline : wake, FZ_INTR_CANCEL);
    err = fz_mutex_lock(m);
    fz_testcancel();
    if (err)
        return err;
    return abs && deadline_passed(clock, abs) ? ETIMEDOUT : 0;
}

static void cond_wake(pthread_cond_t *c, unsigned how_many)
{
    if (__atomic_load_n(waiters_word(c), __ATOMIC_SEQ_CST) == 0)
        return;
    __atomic_fetch_add(seq_word(c), 1, __ATOMIC_SEQ_CST);
    fz_unpark_addr(seq_word(c), ~0u, how_many);
}

static clockid_t cond_clock(pthread_cond_t *c)
{
    return cond_flags(c) & COND_MONOTONIC ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

/* A fiber's wait, or a thread's that is not one on a private condvar. */
static int wait_on(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                   const struct timespec *abs)
{
    if (cond_flags(c) & COND_SHARED)
        return shared_wait(c, m, clock, abs);
    return cond_wait(c, m, clock, abs);
}

FZ_EXPORT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (takes_real_path(c))
        return fz_real.pthread_cond_wait(c, m);
    fz_schedule_point();
    return wait_on(c, m, CLOCK_REALTIME, NULL);
}

FZ_EXPORT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                     const struct timespec *abs)
{
    if (takes_real_path(c))
        return fz_real.pthread_cond_timedwait(c, m, abs);
    if (!fz_timespec_valid(abs))
        return EINVAL;
    fz_schedule_point();
    return wait_on(c, m, cond_clock(c), abs);
}

FZ_EXPORT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                     const struct timespec *abs)
{
    if (takes_real_path(c))
        return fz_real.pthread_cond_clockwait(c, m, clock, abs);
    if ((clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) || !fz_timespec_valid(abs))
        return EINVAL;
    fz_schedule_point();
    return wait_on(c, m, clock, abs);
}

/* glibc's signal for other processes' waiters, an unpark for our fibers */
static int shared_wake(pthread_cond_t *c, int (*real)(pthread_cond_t *), unsigned how_many)
{
    int r = real(c);
    if (fz_sync_hooked())
        fz_unpark_addr(c, ~0u, how_many);
    return r;
}

FZ_EXPORT int pthread_cond_signal(pthread_cond_t *c)
{
    if (cond_flags(c) & COND_SHARED)
        return shared_wake(c, fz_real.pthread_cond_signal, 1);
    if (takes_real_path(c))
        return fz_real.pthread_cond_signal(c);
    cond_wake(c, 1);
    return fz_schedule_point_after(0);
}

FZ_EXPORT int pthread_cond_broadcast(pthread_cond_t *c)
{
    if (cond_flags(c) & COND_SHARED)
        return shared_wake(c, fz_real.pthread_cond_broadcast, ~0u);
    if (takes_real_path(c))
        return fz_real.pthread_cond_broadcast(c);
    cond_wake(c, ~0u);
    return fz_schedule_point_after(0);
}

/* ---- C11: glibc's cnd_t and mtx_t are the pthread objects -------------- */

static int thrd_result(int err)
{
    return err == 0 ? thrd_success : err == ETIMEDOUT ? thrd_timedout : thrd_error;
}

FZ_EXPORT int cnd_wait(cnd_t *c, mtx_t *m)
{
    if (takes_real_path((pthread_cond_t *)c))
        return fz_real.cnd_wait(c, m);
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
