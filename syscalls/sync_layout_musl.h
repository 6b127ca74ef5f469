/* musl's side of syscalls/sync_layout.h: where musl 1.2.3 (x86_64) keeps
 * the state of its pthread objects, what it means, and the parts of the
 * sync layer that follow from it.  Every fact names the musl source it
 * comes from; src/internal/pthread_impl.h names the fields (_m_type is
 * __u.__i[0] and so on).  Include syscalls/sync_layout.h, not this file.
 *
 * musl's objects are unions of int arrays, and musl's own code never
 * touches some of the ints (checked against every use of the _m_, _c_,
 * _rw_ and _b_ names in 1.2.3's src/): where the sync layer needs words of
 * its own (waiter counts, a normal mutex's holder) it takes those, so
 * musl's init, destroy and static initializers (all zeros) keep them
 * right, and musl's code running on the object never misreads them.
 *
 * What differs from glibc, in short: a mutex's recursion and robust-list
 * bookkeeping is musl's own (its trylock and unlock do it, we only replace
 * the waits); musl has no priority-protect mutexes (setprotocol answers
 * ENOTSUP), no rwlock kinds and no EDEADLK check for rwlocks; semaphores
 * use two ints, not one 64-bit word; musl lacks every *clock* variant
 * (pthread_mutex_clocklock, pthread_cond_clockwait,
 * pthread_rwlock_clock*lock, sem_clockwait), so our exported ones never
 * call a real one: they use the timed variant on a converted deadline; a
 * process-shared barrier or condvar speaks musl's own protocol, polled. */
#ifndef FZ_SYNC_LAYOUT_MUSL_H
#define FZ_SYNC_LAYOUT_MUSL_H

#include <errno.h>
#include <limits.h>
#include <semaphore.h>
#include <stdatomic.h>
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync.h"

_Static_assert(sizeof(pthread_mutex_t) == 40 && sizeof(pthread_cond_t) == 48 &&
                   sizeof(pthread_rwlock_t) == 56 && sizeof(pthread_barrier_t) == 32 &&
                   sizeof(sem_t) == 32,
               "musl x86_64 object sizes");

/* A timed lock or wait tries to take the object first and looks at the
 * time only once it would have to wait (pthread_rwlock_timed*lock.c,
 * sem_timedwait.c, pthread_mutex_timedlock.c: the time is first read in
 * __timedwait.c), so an invalid time is EINVAL only then. */
#define FZ_SYNC_TIME_CHECKED_FIRST 0

/* ==== mutexes =========================================================
 * pthread_mutex_t, __u.__i[10]:
 *   [0] _m_type  bits 0-1 type (normal 0, recursive 1, errorcheck 2),
 *                robust 4, priority-inherit 8, process-shared 128
 *                (pthread_mutexattr_settype/setrobust/setprotocol/
 *                setpshared.c; pthread_mutex_init.c copies the attribute)
 *   [1] _m_lock  0 unlocked.  Normal kind: EBUSY when locked
 *                (pthread_mutex_trylock.c).  Other kinds: the owner's tid
 *                in bits 0-29 (our fibers' fake tids fit: runtime/tls.h),
 *                0x40000000 owner died, 0x3fffffff not recoverable
 *                (pthread_mutex_trylock.c, pthread_mutex_consistent.c).
 *                Either: bit 31 when a waiter sleeps in musl's futex wait
 *                (pthread_mutex_timedlock.c)
 *   [2] _m_waiters  musl's sleeping lockers (its unlock wakes the futex)
 *   [3] --       unused by musl: our parked lockers (FZ_MUSL_MX_PARKED)
 *   [4] --       unused by musl: a normal mutex's holder (FZ_MUSL_MX_HOLDER)
 *   [5] _m_count recursion beyond the first lock
 *   [6-9] _m_prev, _m_next: the owner thread's list of held mutexes
 *                (pthread_mutex_trylock.c links every kind but normal;
 *                pthread_mutex_unlock.c unlinks; pthread_exit marks what
 *                is left owner-dead)
 * Simple kinds (normal, recursive, errorcheck, private, not robust, not
 * PI): musl's own trylock and unlock change the object -- so the recursion
 * count, the list of held mutexes (whose head is in the fiber's own
 * struct pthread) and musl's EPERM/EAGAIN answers are musl's by
 * construction -- and only the wait is ours: a locker that must wait counts
 * itself in word 3 and parks on _m_lock while it is held; an unlock that
 * released the lock wakes one if word 3 says anyone is parked.  Neither
 * side touches musl's own waiter marks, so musl's unlock makes no futex
 * call for us.  No lost wake-up: the locker counts itself (seq_cst) before
 * the parking lot re-checks _m_lock under its queue lock, the unlocker
 * swaps _m_lock (seq_cst, in musl) before it reads the count. */

#define FZ_MUSL_MX_TYPE 3
#define FZ_MUSL_MX_ROBUST 4
#define FZ_MUSL_MX_PI 8
#define FZ_MUSL_MX_OWNER 0x3fffffff /* tid bits of _m_lock */
#define FZ_MUSL_MX_TYPE_OF(m) ((m)->__u.__i[0])
#define FZ_MUSL_MX_LOCK(m) ((m)->__u.__i[1])
#define FZ_MUSL_MX_PARKED(m) ((m)->__u.__i[3])
#define FZ_MUSL_MX_HOLDER(m) ((m)->__u.__i[4])

static inline int fz_mutex_kind(pthread_mutex_t *m)
{
    return __atomic_load_n(&FZ_MUSL_MX_TYPE_OF(m), __ATOMIC_RELAXED);
}

/* Robust, PI, process-shared (or a type bit musl never sets): musl's own
 * code, polled (mutex.c). */
static inline bool fz_mutex_special(int kind)
{
    return (kind & ~FZ_MUSL_MX_TYPE) != 0 || (kind & FZ_MUSL_MX_TYPE) == FZ_MUSL_MX_TYPE;
}

static inline int fz_mutex_type(int kind)
{
    return kind & FZ_MUSL_MX_TYPE; /* musl's values are PTHREAD_MUTEX_* */
}

static inline bool fz_mutex_pi(int kind)
{
    return kind & FZ_MUSL_MX_PI;
}

static inline bool fz_mutex_robust(int kind)
{
    return kind & FZ_MUSL_MX_ROBUST;
}

static inline int *fz_mutex_word(pthread_mutex_t *m)
{
    return &FZ_MUSL_MX_LOCK(m);
}

/* The holder's tid, 0 if none or unknown. */
static inline pid_t fz_mutex_owner(pthread_mutex_t *m)
{
    if (fz_mutex_type(fz_mutex_kind(m)) == PTHREAD_MUTEX_NORMAL)
        return __atomic_load_n(&FZ_MUSL_MX_HOLDER(m), __ATOMIC_RELAXED);
    return __atomic_load_n(&FZ_MUSL_MX_LOCK(m), __ATOMIC_RELAXED) & FZ_MUSL_MX_OWNER;
}

/* A normal mutex: musl's trylock is this one CAS (pthread_mutex_trylock.c),
 * made here so the common case is not a call into libc. */
static inline bool fz_musl_take_normal(pthread_mutex_t *m, pid_t me)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&FZ_MUSL_MX_LOCK(m), &expected, EBUSY, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return false;
    __atomic_store_n(&FZ_MUSL_MX_HOLDER(m), me, __ATOMIC_RELAXED);
    return true;
}

static inline bool fz_mutex_take_plain(pthread_mutex_t *m, int kind)
{
    return kind == PTHREAD_MUTEX_NORMAL && fz_musl_take_normal(m, fz_tcb_current_tid());
}

/* One attempt at a simple kind: 0, EBUSY, or musl's answer to a caller
 * that owns it already (recursive: 0 or EAGAIN; errorcheck: EBUSY from
 * trylock, EDEADLK from a lock, as pthread_mutex_timedlock.c says). */
static inline int fz_mutex_try(pthread_mutex_t *m, int kind, pid_t me, bool trying)
{
    int type = fz_mutex_type(kind);
    if (type == PTHREAD_MUTEX_NORMAL)
        return fz_musl_take_normal(m, me) ? 0 : EBUSY;
    int r = fz_real.pthread_mutex_trylock(m);
    if (r == EBUSY && !trying && type == PTHREAD_MUTEX_ERRORCHECK && fz_mutex_owner(m) == me)
        return EDEADLK;
    return r;
}

static inline void fz_mutex_wait_begin(pthread_mutex_t *m)
{
    __atomic_fetch_add(&FZ_MUSL_MX_PARKED(m), 1, __ATOMIC_SEQ_CST);
}

static inline void fz_mutex_wait_end(pthread_mutex_t *m)
{
    __atomic_fetch_sub(&FZ_MUSL_MX_PARKED(m), 1, __ATOMIC_SEQ_CST);
}

static inline int fz_mutex_take_waiting(pthread_mutex_t *m, int kind, pid_t me)
{
    return fz_mutex_try(m, kind, me, true);
}

static inline bool fz_mutex_may_park(void *word)
{
    return __atomic_load_n((int *)word, __ATOMIC_SEQ_CST) != 0;
}

/* Unlock a simple kind through musl (0, or EPERM for a recursive or
 * errorcheck mutex the caller does not own); *wake says a parked locker
 * must be woken: the lock is no longer the caller's and someone parked. */
static inline int fz_mutex_release(pthread_mutex_t *m, int kind, pid_t me, bool *wake)
{
    int type = fz_mutex_type(kind);
    *wake = false;
    if (type == PTHREAD_MUTEX_NORMAL)
        __atomic_store_n(&FZ_MUSL_MX_HOLDER(m), 0, __ATOMIC_RELAXED);
    int r = fz_real.pthread_mutex_unlock(m);
    if (r)
        return r;
    if (type == PTHREAD_MUTEX_RECURSIVE &&
        (__atomic_load_n(&FZ_MUSL_MX_LOCK(m), __ATOMIC_SEQ_CST) & FZ_MUSL_MX_OWNER) == me)
        return 0; /* one level less, still ours */
    *wake = __atomic_load_n(&FZ_MUSL_MX_PARKED(m), __ATOMIC_SEQ_CST) != 0;
    return 0;
}

/* No priority-protect mutexes in musl. */
static inline pid_t fz_mutex_pp_enter(pthread_mutex_t *m, int kind)
{
    (void)m, (void)kind;
    return 0;
}

static inline void fz_mutex_pp_leave(pthread_mutex_t *m, pid_t fake)
{
    (void)m, (void)fake;
}

/* musl's trylock answers ENOTRECOVERABLE without taking the lock
 * (pthread_mutex_trylock.c: a 0x3fffffff word, or a PI robust mutex it
 * had to hand back), so nothing is left to release. */
static inline int fz_mutex_unrecoverable(pthread_mutex_t *m, int kind)
{
    (void)m, (void)kind;
    return ENOTRECOVERABLE;
}

/* No pthread_mutex_clocklock in musl: its timed lock on the same instant
 * read on CLOCK_REALTIME now. */
static inline int fz_mutex_real_clocklock(pthread_mutex_t *m, clockid_t clock,
                                          const struct timespec *abs)
{
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return EINVAL;
    struct timespec rt = fz_sync_convert_abs(clock, abs, CLOCK_REALTIME);
    return fz_real.pthread_mutex_timedlock(m, &rt);
}

/* ==== condition variables =============================================
 * pthread_cond_t, __u.__i[12] (__p[6]):
 *   __p[0] _c_shared  non-null for process-shared (pthread_cond_init.c)
 *   __p[1] _c_head    private: musl's waiter list; shared: __i[2] _c_seq
 *                     (bumped by signal and broadcast) and __i[3]
 *                     _c_waiters (pthread_cond_timedwait.c,
 *                     pthread_cond_signal.c)
 *   __i[4] _c_clock   the clockid of the attribute (pthread_cond_init.c)
 *   __i[5..7]         unused by musl: our sequence and waiter words in
 *                     __i[6] and __i[7]
 *   __i[8] _c_lock, __p[5] _c_tail: musl's private waiter list
 * A private condvar is ours: musl's waiter list stays empty, so musl's
 * own signal (sync hooks off) finds nobody, and its destroy does nothing
 * (pthread_cond_destroy.c). */

#define FZ_MUSL_CV_SEQ(c) ((c)->__u.__i[2])
#define FZ_MUSL_CV_WAITERS(c) ((c)->__u.__i[3])

static inline bool fz_cond_shared(pthread_cond_t *c)
{
    return __atomic_load_n(&c->__u.__p[0], __ATOMIC_RELAXED) != NULL;
}

static inline clockid_t fz_cond_clock(pthread_cond_t *c)
{
    return c->__u.__i[4];
}

static inline unsigned *fz_cond_seq(pthread_cond_t *c)
{
    return (unsigned *)&c->__u.__i[6];
}

static inline unsigned *fz_cond_waiters(pthread_cond_t *c)
{
    return (unsigned *)&c->__u.__i[7];
}

/* musl refuses a wait on a mutex of a kind that has an owner unless the
 * caller is that owner, first of all (pthread_cond_timedwait.c). */
static inline int fz_cond_wait_check(pthread_mutex_t *m)
{
    int type = fz_mutex_kind(m);
    if ((type & 15) &&
        (__atomic_load_n(&FZ_MUSL_MX_LOCK(m), __ATOMIC_RELAXED) & INT_MAX) != fz_tcb_current_tid())
        return EPERM;
    return 0;
}

struct fz_musl_cv_check {
    int *seq;
    int seen;
};

static inline bool fz_musl_cv_unchanged(void *ctx)
{
    struct fz_musl_cv_check *s = ctx;
    return __atomic_load_n(s->seq, __ATOMIC_SEQ_CST) == s->seen;
}

#define FZ_MUSL_SHARED_NAP_MIN_NS 20000u

/* A fiber's wait on a process-shared condvar, musl's protocol
 * (pthread_cond_timedwait.c, pthread_cond_signal.c,
 * pthread_cond_destroy.c): read _c_seq, count in _c_waiters (so signallers
 * in every process bump _c_seq), unlock, wait until _c_seq moves, count
 * out -- waking a destroy that set bit 31 when the count drops to zero --
 * and relock.  The wait is a nap on the condvar's address that a signal
 * from this process ends at once (cond.c's shared_wake) and that grows from
 * 20 us to 1 ms while _c_seq stays put: a signal from another process is
 * seen that much later than natively.  pthread_cancel ends it; the
 * cancellation is acted on once the mutex is held again. */
static inline int fz_cond_shared_wait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                      const struct timespec *abs)
{
    fz_testcancel();
    struct fz_musl_cv_check s = {&FZ_MUSL_CV_SEQ(c), 0};
    s.seen = __atomic_load_n(s.seq, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&FZ_MUSL_CV_WAITERS(c), 1, __ATOMIC_SEQ_CST);
    int result = fz_mutex_unlock(m);
    uint64_t deadline = abs ? fz_sync_deadline(clock, abs) : 0;
    uint64_t nap = FZ_MUSL_SHARED_NAP_MIN_NS;
    while (!result && fz_musl_cv_unchanged(&s)) {
        if (abs && fz_sync_deadline_passed(clock, abs)) {
            result = ETIMEDOUT;
            break;
        }
        uint64_t wake = fz_now_ns() + nap;
        nap = nap * 2 < FZ_BACKOFF_MAX_NS ? nap * 2 : FZ_BACKOFF_MAX_NS;
        if (fz_park_addr(c, ~0u, fz_musl_cv_unchanged, &s,
                         deadline && deadline < wake ? deadline : wake, FZ_INTR_CANCEL) == EINTR)
            break; /* cancelled: acted on below, with the mutex held */
    }
    if (__atomic_fetch_sub(&FZ_MUSL_CV_WAITERS(c), 1, __ATOMIC_SEQ_CST) == INT_MIN + 1)
        fz_futex_wake_shared(&FZ_MUSL_CV_WAITERS(c), 1); /* the last one out, for destroy */
    if (result == EPERM)
        return result; /* the mutex was not the caller's to unlock */
    int err = fz_mutex_lock(m);
    fz_testcancel();
    return err ? err : result;
}

/* No pthread_cond_clockwait in musl: its timed wait, which reads the
 * condvar's own clock, on the same instant read on that clock now. */
static inline int fz_cond_real_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                         const struct timespec *abs)
{
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return EINVAL;
    struct timespec own = fz_sync_convert_abs(clock, abs, fz_cond_clock(c));
    return fz_real.pthread_cond_timedwait(c, m, &own);
}

/* ==== rwlocks =========================================================
 * pthread_rwlock_t, __u.__i[14]:
 *   [0] _rw_lock     0 free, 0x7fffffff write-locked, else the number of
 *                    readers (EAGAIN at 0x7ffffffe); bit 31 when a waiter
 *                    sleeps in musl's futex wait (pthread_rwlock_try*lock.c,
 *                    pthread_rwlock_timed*lock.c, pthread_rwlock_unlock.c)
 *   [1] _rw_waiters  musl's sleeping waiters
 *   [2] _rw_shared   128 for process-shared, else 0 (pthread_rwlock_init.c)
 *   [3..13]          unused by musl: our waiting writers [3] and readers [4]
 * Private locks keep musl's _rw_lock encoding, so musl's own try and
 * unlock (sync hooks off) agree with ours.  musl has no kinds (readers
 * are always preferred) and no write-owner check: a writer relocking
 * waits, as natively. */

struct fz_rwlock_words {
    atomic_uint *state, *writers_waiting, *readers_waiting;
    atomic_int *owner; /* the write owner's tid, for EDEADLK; NULL: no such check */
    bool prefers_writers;
};

#define FZ_RW_WRITE_LOCKED 0x7fffffffu /* what a writer stores */
#define FZ_RW_READERS_FULL 0x7ffffffeu /* readers at which a reader gets EAGAIN */

static inline bool fz_rw_write_locked(unsigned state)
{
    return (state & 0x7fffffffu) == FZ_RW_WRITE_LOCKED;
}

static inline unsigned fz_rw_readers(unsigned state)
{
    return fz_rw_write_locked(state) ? 0 : state & 0x7fffffffu;
}

static inline bool fz_rwlock_shared(pthread_rwlock_t *rw)
{
    return rw->__u.__i[2] != 0;
}

static inline struct fz_rwlock_words fz_rwlock_words(pthread_rwlock_t *rw)
{
    _Static_assert(sizeof(atomic_uint) == sizeof(int), "rwlock words");
    return (struct fz_rwlock_words){
        .state = (atomic_uint *)&rw->__u.__i[0],
        .writers_waiting = (atomic_uint *)&rw->__u.__i[3],
        .readers_waiting = (atomic_uint *)&rw->__u.__i[4],
        .owner = NULL,
        .prefers_writers = false,
    };
}

/* A process-shared lock, musl's encoding: musl's try*lock (EBUSY, EAGAIN). */
static inline int fz_rwlock_real_try(pthread_rwlock_t *rw, bool write)
{
    return write ? fz_real.pthread_rwlock_trywrlock(rw) : fz_real.pthread_rwlock_tryrdlock(rw);
}

/* No pthread_rwlock_clock*lock in musl: the timed ones on CLOCK_REALTIME. */
static inline int fz_rwlock_real_clocklock(pthread_rwlock_t *rw, bool write, clockid_t clock,
                                           const struct timespec *abs)
{
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return EINVAL;
    struct timespec rt = fz_sync_convert_abs(clock, abs, CLOCK_REALTIME);
    return write ? fz_real.pthread_rwlock_timedwrlock(rw, &rt)
                 : fz_real.pthread_rwlock_timedrdlock(rw, &rt);
}

/* ==== semaphores ======================================================
 * sem_t, __val[8] ints:
 *   [0] the value; -1 means 0 with sleepers to wake (musl's sem_trywait
 *       leaves -1 when it takes the last unit while [1] is not 0; sem_post
 *       turns -1 into 1; sem_getvalue reports 0 for it)
 *   [1] waiters: musl's own sleepers, and our parked ones
 *   [2] 128 for a private semaphore, 0 for a shared one (sem_init.c;
 *       sem_open.c makes every named one shared)
 * sem_init, sem_destroy, sem_getvalue and sem_trywait stay musl's.  Our
 * waiters count themselves in [1] before they park while the value is not
 * positive; a post adds one (seq_cst) and then reads [1]: no lost wake-up.
 * (No 64-bit atomics here: musl's sem_t is only int-aligned.) */

static inline volatile int *fz_musl_sem(sem_t *s)
{
    return s->__val;
}

static inline bool fz_sem_shared(sem_t *s)
{
    return fz_musl_sem(s)[2] == 0;
}

static inline void *fz_sem_word(sem_t *s)
{
    return (void *)&fz_musl_sem(s)[0];
}

static inline bool fz_sem_try_take(sem_t *s)
{
    int *value = (int *)&fz_musl_sem(s)[0];
    int v = __atomic_load_n(value, __ATOMIC_RELAXED);
    while (v > 0)
        if (__atomic_compare_exchange_n(value, &v, v - 1, true, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return true;
    return false;
}

static inline void fz_sem_wait_begin(sem_t *s)
{
    __atomic_fetch_add((int *)&fz_musl_sem(s)[1], 1, __ATOMIC_SEQ_CST);
}

static inline void fz_sem_wait_end(sem_t *s)
{
    __atomic_fetch_sub((int *)&fz_musl_sem(s)[1], 1, __ATOMIC_SEQ_CST);
}

static inline bool fz_sem_may_park(void *ctx)
{
    return __atomic_load_n((int *)&fz_musl_sem(ctx)[0], __ATOMIC_SEQ_CST) <= 0;
}

static inline int fz_sem_add_one(sem_t *s, bool *wake)
{
    int *value = (int *)&fz_musl_sem(s)[0];
    int v = __atomic_load_n(value, __ATOMIC_RELAXED);
    do {
        if (v == SEM_VALUE_MAX)
            return EOVERFLOW;
    } while (!__atomic_compare_exchange_n(value, &v, v < 0 ? 1 : v + 1, true, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
    *wake = v < 0 || __atomic_load_n((int *)&fz_musl_sem(s)[1], __ATOMIC_SEQ_CST) != 0;
    return 0;
}

/* No sem_clockwait in musl: its timed wait on CLOCK_REALTIME. */
static inline int fz_sem_real_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) {
        errno = EINVAL;
        return -1;
    }
    struct timespec rt = fz_sync_convert_abs(clock, abs, CLOCK_REALTIME);
    return fz_real.sem_timedwait(s, &rt);
}

/* ==== barriers ========================================================
 * pthread_barrier_t, __u.__i[8] (__p[4]):
 *   [0] _b_lock, [1] _b_waiters   private: a spinlock guarding _b_inst;
 *                                 shared: see fz_barrier_libc_wait
 *   [2] _b_limit   count - 1, bit 31 set for process-shared
 *                  (pthread_barrier_init.c, pthread_barrierattr_setpshared.c)
 *   [3] _b_count, [4] _b_waiters2  used by shared barriers only
 *   [5]            unused by musl
 *   __p[3] _b_inst private: the current round's record on a waiter's stack
 * A private barrier runs our ticket algorithm (barrier.c) in [3], [4] and
 * [5]: musl's private wait uses only [0], [1], [2] and _b_inst, which stay
 * as init left them, and its destroy does nothing.  A shared one speaks
 * musl's protocol, polled, since the other process runs musl's. */

struct fz_barrier_view {
    atomic_uint *in, *current_round, *out;
    unsigned count;
    bool shared; /* never true here: shared ones run musl's protocol */
};

static inline bool fz_barrier_shared(pthread_barrier_t *b)
{
    return b->__u.__i[2] < 0;
}

static inline bool fz_barrier_view(pthread_barrier_t *b, struct fz_barrier_view *v)
{
    if (fz_barrier_shared(b))
        return false;
    *v =
        (struct fz_barrier_view){(atomic_uint *)&b->__u.__i[3], (atomic_uint *)&b->__u.__i[4],
                                 (atomic_uint *)&b->__u.__i[5], (unsigned)b->__u.__i[2] + 1, false};
    return true;
}

/* Sleep with a backoff while *word == value: another process's musl wakes
 * only the waiters it counted, and we do not count ourselves. */
static inline void fz_musl_poll_while(const volatile int *word, int value)
{
    struct fz_backoff backoff = fz_backoff_begin(FZ_BACKOFF_WAIT_FIRST_NS);
    while (*word == value)
        fz_backoff_sleep(&backoff, 0, FZ_INTR_NONE);
}

/* A fiber at a process-shared barrier, in musl's protocol
 * (pthread_barrier_wait.c): arrivals take _b_lock from 0 to limit one at a
 * time and count themselves in _b_count; the last of a round zeroes
 * _b_count (the others wait for that) and keeps _b_lock; then everyone
 * counts down _b_count again and waits for the last to zero it; then
 * everyone takes one off _b_lock, the last one freeing it for the next
 * round or waking a destroy (which set bit 31).  Wakes are shared futex
 * wakes for musl's sleepers, counted in _b_waiters and _b_waiters2.
 * Not done: musl takes its internal vm lock around the last two steps so a
 * munmap of the barrier in this process waits for them; a fiber cannot,
 * so unmapping a shared barrier without pthread_barrier_destroy first
 * (which does wait) may race with a fiber leaving it. */
static inline int fz_barrier_libc_wait(pthread_barrier_t *b)
{
    volatile int *gate = &b->__u.__vi[0], *count = &b->__u.__vi[3];
    volatile int *waiters = &b->__u.__vi[1], *waiters2 = &b->__u.__vi[4];
    int limit = (b->__u.__i[2] & INT_MAX) + 1, v, ret = 0;
    if (limit == 1)
        return PTHREAD_BARRIER_SERIAL_THREAD;
    for (;;) {
        int expected = 0;
        if (__atomic_compare_exchange_n((int *)gate, &expected, limit, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            break;
        fz_musl_poll_while(gate, expected);
    }
    if (__atomic_add_fetch((int *)count, 1, __ATOMIC_SEQ_CST) == limit) {
        __atomic_store_n((int *)count, 0, __ATOMIC_SEQ_CST);
        ret = PTHREAD_BARRIER_SERIAL_THREAD;
        if (*waiters2)
            fz_futex_wake_shared((const void *)count, INT_MAX);
    } else {
        __atomic_store_n((int *)gate, 0, __ATOMIC_SEQ_CST);
        if (*waiters)
            fz_futex_wake_shared((const void *)gate, 1);
        while ((v = *count) > 0)
            fz_musl_poll_while(count, v);
    }
    if (__atomic_fetch_sub((int *)count, 1, __ATOMIC_SEQ_CST) == 1 - limit) {
        __atomic_store_n((int *)count, 0, __ATOMIC_SEQ_CST);
        if (*waiters2)
            fz_futex_wake_shared((const void *)count, INT_MAX);
    } else {
        while ((v = *count) != 0)
            fz_musl_poll_while(count, v);
    }
    int w;
    v = *gate;
    do
        w = *waiters;
    while (!__atomic_compare_exchange_n((int *)gate, &v, v == INT_MIN + 1 ? 0 : v - 1, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    if (v == INT_MIN + 1 || (v == 1 && w))
        fz_futex_wake_shared((const void *)gate, 1);
    return ret;
}

/* musl's destroy of a shared barrier (pthread_barrier_destroy.c), polled:
 * mark _b_lock (bit 31) and wait until the round in progress has left. */
static inline int fz_barrier_libc_destroy(pthread_barrier_t *b)
{
    volatile int *gate = &b->__u.__vi[0];
    if (*gate) {
        __atomic_fetch_or((int *)gate, INT_MIN, __ATOMIC_SEQ_CST);
        for (int v; (v = *gate) & INT_MAX;)
            fz_musl_poll_while(gate, v);
    }
    return 0;
}

/* ==== spinlocks ======================================================
 * pthread_spinlock_t is an int: 0 free, EBUSY held (pthread_spin_trylock.c,
 * pthread_spin_lock.c). */
static inline bool fz_spin_looks_free(int word)
{
    return word == 0;
}

#endif
