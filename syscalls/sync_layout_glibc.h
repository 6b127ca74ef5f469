/* glibc's side of syscalls/sync_layout.h: where glibc (x86_64, 2.34 to
 * 2.42) keeps the state of its pthread objects and what it means, and the
 * parts of the sync layer that follow from it.  Each object's file says
 * why the lock stays in glibc's encoding (mutex.c, cond.c, ...); the facts
 * are here.  Include syscalls/sync_layout.h, not this file. */
#ifndef FZ_SYNC_LAYOUT_GLIBC_H
#define FZ_SYNC_LAYOUT_GLIBC_H

#include <errno.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include "runtime/libc.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync.h"

/* A timed rwlock or semaphore wait refuses an invalid time (EINVAL)
 * before it tries to take anything. */
#define FZ_SYNC_TIME_CHECKED_FIRST 1

/* ==== mutexes =========================================================
 *   __lock   0 unlocked, 1 locked, 2 locked and someone may be parked
 *   __owner  locker's tid as glibc records it (fibers: their fake tid)
 *   __count  recursion depth (recursive kind)
 *   __nusers lockers holding it (glibc's destroy answers EBUSY while > 0)
 *   __kind   type in bits 0-1 (normal, recursive, errorcheck, adaptive),
 *            elision hints 256/512 (ignored); any other bit -- robust 16,
 *            priority-inherit 32, priority-protect 64, process-shared 128,
 *            or -1 after destroy -- makes the mutex "special". */

#define FZ_GLIBC_KIND_TYPE_MASK 3
#define FZ_GLIBC_KIND_ELISION (256 | 512)
#define FZ_GLIBC_KIND_ROBUST 16
#define FZ_GLIBC_KIND_PI 32
#define FZ_GLIBC_KIND_PP 64

enum { FZ_GLIBC_UNLOCKED = 0, FZ_GLIBC_LOCKED = 1, FZ_GLIBC_CONTENDED = 2 };

static inline int fz_mutex_kind(pthread_mutex_t *m)
{
    return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
}

static inline bool fz_mutex_special(int kind)
{
    return (kind & ~(FZ_GLIBC_KIND_TYPE_MASK | FZ_GLIBC_KIND_ELISION)) != 0;
}

/* PTHREAD_MUTEX_NORMAL, _RECURSIVE or _ERRORCHECK: adaptive mutexes are
 * normal ones that spin, which our lock does anyway. */
static inline int fz_mutex_type(int kind)
{
    int type = kind & FZ_GLIBC_KIND_TYPE_MASK;
    return type == PTHREAD_MUTEX_ADAPTIVE_NP ? PTHREAD_MUTEX_NORMAL : type;
}

static inline bool fz_mutex_pi(int kind)
{
    return kind & FZ_GLIBC_KIND_PI;
}

static inline bool fz_mutex_robust(int kind)
{
    return kind & FZ_GLIBC_KIND_ROBUST;
}

static inline int *fz_mutex_word(pthread_mutex_t *m)
{
    return &m->__data.__lock;
}

/* The holder's tid, 0 if none. */
static inline pid_t fz_mutex_owner(pthread_mutex_t *m)
{
    return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
}

static inline bool fz_glibc_try_word(int *word)
{
    int expected = FZ_GLIBC_UNLOCKED;
    return __atomic_compare_exchange_n(word, &expected, FZ_GLIBC_LOCKED, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static inline void fz_glibc_became_owner(pthread_mutex_t *m, int type, pid_t me)
{
    m->__data.__owner = me;
    if (type == PTHREAD_MUTEX_RECURSIVE)
        m->__data.__count = 1;
    m->__data.__nusers++;
}

/* Uncontended lock of a normal or adaptive mutex, the common case. */
static inline bool fz_mutex_take_plain(pthread_mutex_t *m, int kind)
{
    if (fz_mutex_special(kind) || fz_mutex_type(kind) != PTHREAD_MUTEX_NORMAL ||
        !fz_glibc_try_word(&m->__data.__lock))
        return false;
    fz_glibc_became_owner(m, PTHREAD_MUTEX_NORMAL, fz_tcb_current_tid());
    return true;
}

/* One attempt at a simple kind: 0, EBUSY, or the answer to a caller that
 * owns it already (recursion: 0 or EAGAIN; errorcheck: EDEADLK, or EBUSY
 * when trying). */
static inline int fz_mutex_try(pthread_mutex_t *m, int kind, pid_t me, bool trying)
{
    int type = fz_mutex_type(kind);
    if (type != PTHREAD_MUTEX_NORMAL && m->__data.__owner == me) {
        if (type == PTHREAD_MUTEX_ERRORCHECK)
            return trying ? EBUSY : EDEADLK;
        if (m->__data.__count + 1 == 0)
            return EAGAIN;
        m->__data.__count++;
        return 0;
    }
    if (!fz_glibc_try_word(&m->__data.__lock))
        return EBUSY;
    fz_glibc_became_owner(m, type, me);
    return 0;
}

/* The parked part of a lock: glibc's own protocol (the word says 2 while
 * anyone may wait), so nothing to count. */
static inline void fz_mutex_wait_begin(pthread_mutex_t *m)
{
    (void)m;
}

static inline void fz_mutex_wait_end(pthread_mutex_t *m)
{
    (void)m;
}

/* Take it marking it contended (we do not know whether others wait). */
static inline int fz_mutex_take_waiting(pthread_mutex_t *m, int kind, pid_t me)
{
    if (__atomic_exchange_n(&m->__data.__lock, FZ_GLIBC_CONTENDED, __ATOMIC_ACQUIRE) !=
        FZ_GLIBC_UNLOCKED)
        return EBUSY;
    fz_glibc_became_owner(m, fz_mutex_type(kind), me);
    return 0;
}

/* Park while this holds (checked under the parking lot's queue lock). */
static inline bool fz_mutex_may_park(void *word)
{
    return __atomic_load_n((int *)word, __ATOMIC_RELAXED) == FZ_GLIBC_CONTENDED;
}

/* Unlock a simple kind: 0 or EPERM; *wake says a parked locker must be
 * woken (on fz_mutex_word). */
static inline int fz_mutex_release(pthread_mutex_t *m, int kind, pid_t me, bool *wake)
{
    int type = fz_mutex_type(kind);
    *wake = false;
    if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) {
        if (m->__data.__owner != me)
            return EPERM;
        if (type == PTHREAD_MUTEX_RECURSIVE && --m->__data.__count != 0)
            return 0;
    }
    m->__data.__owner = 0;
    m->__data.__nusers--;
    *wake = __atomic_exchange_n(&m->__data.__lock, FZ_GLIBC_UNLOCKED, __ATOMIC_RELEASE) ==
            FZ_GLIBC_CONTENDED;
    return 0;
}

/* Priority-protect mutexes: glibc hands the caller's tid to
 * sched_getparam and sched_setscheduler, where a fiber's fake tid is ESRCH.
 * For the length of one glibc call that cannot block (trylock, unlock) the
 * TCB names the carrier as the kernel knows it, while the mutex goes on
 * naming the fiber as its owner, so an unlock after a migration is still
 * the owner's.  Returns the fiber's tid to restore, 0 if nothing changed. */
static inline pid_t fz_mutex_pp_enter(pthread_mutex_t *m, int kind)
{
    if (!(kind & FZ_GLIBC_KIND_PP))
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

static inline void fz_mutex_pp_leave(pthread_mutex_t *m, pid_t fake)
{
    if (!fake)
        return;
    if (m->__data.__owner == fz_tcb_current_tid())
        m->__data.__owner = fake;
    fz_tcb_set_current_tid(fake);
}

/* glibc's trylock answers ENOTRECOVERABLE with the word still holding the
 * caller's tid, where its lock releases the word first.  A lock made of
 * trylocks must release it too, or the next locker waits forever. */
static inline int fz_mutex_unrecoverable(pthread_mutex_t *m, int kind)
{
    int *word = &m->__data.__lock;
    int seen = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (kind & FZ_GLIBC_KIND_PI)
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

static inline int fz_mutex_real_clocklock(pthread_mutex_t *m, clockid_t clock,
                                          const struct timespec *abs)
{
    return fz_real.pthread_mutex_clocklock(m, clock, abs);
}

/* ==== condition variables =============================================
 * The 48-byte pthread_cond_t as glibc initializes it
 * (PTHREAD_COND_INITIALIZER and pthread_cond_init/cnd_init zero it and set
 * __wrefs bit 0 for process-shared, bit 1 for CLOCK_MONOTONIC; __wrefs
 * moved in glibc 2.41, its place comes from runtime/libc.h).  Private ones
 * are ours from then on: our sequence and waiter words are its first 8
 * bytes.  glibc's destroy only waits for its own reference count in
 * __wrefs, which we never raise, so it returns at once as it should when
 * nobody waits. */

#define FZ_GLIBC_COND_SHARED 1u
#define FZ_GLIBC_COND_MONOTONIC 2u

static inline unsigned fz_glibc_cond_flags(pthread_cond_t *c)
{
    /* __wrefs: byte 36 up to glibc 2.40, 28 since (runtime/libc_glibc.c) */
    return __atomic_load_n(&FZ_AT(c, fz_libc.cond_flags, unsigned), __ATOMIC_RELAXED);
}

static inline bool fz_cond_shared(pthread_cond_t *c)
{
    return fz_glibc_cond_flags(c) & FZ_GLIBC_COND_SHARED;
}

static inline clockid_t fz_cond_clock(pthread_cond_t *c)
{
    return fz_glibc_cond_flags(c) & FZ_GLIBC_COND_MONOTONIC ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

static inline unsigned *fz_cond_seq(pthread_cond_t *c)
{
    return (unsigned *)c;
}

static inline unsigned *fz_cond_waiters(pthread_cond_t *c)
{
    return (unsigned *)c + 1;
}

/* What glibc checks before a wait does anything: nothing (a mutex the
 * caller does not hold fails when the wait unlocks it). */
static inline int fz_cond_wait_check(pthread_mutex_t *m)
{
    (void)m;
    return 0;
}

#define FZ_GLIBC_SHARED_NAP_MIN_NS 20000u
#define FZ_GLIBC_SHARED_NAP_MAX_NS FZ_BACKOFF_MAX_NS

/* A fiber's wait on a process-shared condvar, which other processes signal
 * through glibc, so a fiber polls it: glibc's timed wait with a time limit
 * already past registers it, takes a signal if one is pending and returns
 * at once -- on a private dummy mutex, so glibc never locks or unlocks the
 * caller's, whose waiters may be parked fibers.  With no signal the fiber
 * unlocks the mutex, naps, relocks it and returns 0: a spurious wake-up,
 * which POSIX allows and every caller re-checks its predicate after.  A
 * signal sent during the nap is not lost for that reason: the signaller
 * changed the predicate first; one from this process also ends the nap (it
 * is a park on the condvar's address, see cond.c's shared_wake).  The nap
 * grows from 20 us to 1 ms while a fiber's polls find nothing, so a long
 * wait costs about a thousand short wake-ups a second. */
static inline int fz_cond_shared_wait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
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
    if (abs && fz_sync_deadline_passed(clock, abs))
        return ETIMEDOUT;
    uint64_t nap = self->shared_nap_ns ? self->shared_nap_ns * 2 : FZ_GLIBC_SHARED_NAP_MIN_NS;
    self->shared_nap_ns =
        nap > FZ_GLIBC_SHARED_NAP_MAX_NS ? FZ_GLIBC_SHARED_NAP_MAX_NS : (unsigned)nap;
    uint64_t wake = fz_now_ns() + self->shared_nap_ns;
    uint64_t deadline = abs ? fz_abs_to_deadline(clock, abs) : 0;
    int err = fz_mutex_unlock(m);
    if (err)
        return err;
    fz_park_addr(c, ~0u, NULL, NULL, deadline && deadline < wake ? deadline : wake, FZ_INTR_CANCEL);
    err = fz_mutex_lock(m);
    fz_testcancel();
    if (err)
        return err;
    return abs && fz_sync_deadline_passed(clock, abs) ? ETIMEDOUT : 0;
}

static inline int fz_cond_real_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clock,
                                         const struct timespec *abs)
{
    return fz_real.pthread_cond_clockwait(c, m, clock, abs);
}

/* ==== rwlocks =========================================================
 * glibc's struct __pthread_rwlock_arch_t (x86_64, the same from 2.34 to
 * 2.42).  Process-private locks (__shared == 0, which includes both
 * static initializers) hold our encoding:
 *   __readers        state: WRITE_LOCKED bit | number of readers holding
 *   __writers        writers waiting
 *   __wrphase_futex  readers waiting
 *   __cur_writer     tid of the write owner (glibc's EDEADLK check)
 *   __flags          the kind, as glibc's init and initializers store it;
 *                    only PREFER_WRITER_NONRECURSIVE holds back readers
 *                    (glibc treats PREFER_WRITER_NP like the default) */

struct fz_rwlock_words {
    atomic_uint *state, *writers_waiting, *readers_waiting;
    atomic_int *owner; /* the write owner's tid, for EDEADLK; NULL: no such check */
    bool prefers_writers;
};

#define FZ_RW_WRITE_LOCKED 0x80000000u /* what a writer stores */
#define FZ_RW_READERS_FULL 0x3fffffffu /* readers at which a reader gets EAGAIN */

static inline bool fz_rw_write_locked(unsigned state)
{
    return state & FZ_RW_WRITE_LOCKED;
}

static inline unsigned fz_rw_readers(unsigned state)
{
    return state & FZ_RW_READERS_FULL;
}

static inline bool fz_rwlock_shared(pthread_rwlock_t *rw)
{
    return rw->__data.__shared != 0;
}

static inline struct fz_rwlock_words fz_rwlock_words(pthread_rwlock_t *rw)
{
    _Static_assert(sizeof(atomic_uint) == sizeof(unsigned), "rwlock words");
    return (struct fz_rwlock_words){
        .state = (atomic_uint *)&rw->__data.__readers,
        .writers_waiting = (atomic_uint *)&rw->__data.__writers,
        .readers_waiting = (atomic_uint *)&rw->__data.__wrphase_futex,
        .owner = (atomic_int *)&rw->__data.__cur_writer,
        .prefers_writers = rw->__data.__flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP,
    };
}

/* A process-shared lock, glibc's encoding: one attempt that keeps every
 * glibc check (EDEADLK, EAGAIN) -- a real lock with a deadline already
 * past.  EBUSY when it would wait. */
static inline int fz_rwlock_real_try(pthread_rwlock_t *rw, bool write)
{
    static const struct timespec expired = {0, 0};
    int err = write ? fz_real.pthread_rwlock_clockwrlock(rw, CLOCK_MONOTONIC, &expired)
                    : fz_real.pthread_rwlock_clockrdlock(rw, CLOCK_MONOTONIC, &expired);
    return err == ETIMEDOUT ? EBUSY : err;
}

static inline int fz_rwlock_real_clocklock(pthread_rwlock_t *rw, bool write, clockid_t clock,
                                           const struct timespec *abs)
{
    return write ? fz_real.pthread_rwlock_clockwrlock(rw, clock, abs)
                 : fz_real.pthread_rwlock_clockrdlock(rw, clock, abs);
}

/* ==== semaphores ======================================================
 * glibc's x86_64 sem_t (the same from 2.34 to 2.42): a 64-bit `data`
 * word with the value in the low 32 bits and the number of waiters in the
 * high 32, then `private`, 0 for process-private semaphores and
 * FUTEX_SHARED (128) for pshared ones (sem_init pshared != 0 and every
 * sem_open'ed one).  sem_trywait is one CAS on the value; waiters count
 * themselves into the same word a post changes, so a post sees them. */

struct fz_glibc_sem {
    _Atomic uint64_t data;
    int private_flag;
    int pad;
};
_Static_assert(sizeof(struct fz_glibc_sem) <= sizeof(sem_t), "sem_t layout");

#define FZ_GLIBC_SEM_VALUE 0xffffffffull
#define FZ_GLIBC_SEM_WAITER (1ull << 32)

static inline struct fz_glibc_sem *fz_glibc_sem(sem_t *s)
{
    return (struct fz_glibc_sem *)s;
}

static inline bool fz_sem_shared(sem_t *s)
{
    return fz_glibc_sem(s)->private_flag != 0;
}

static inline void *fz_sem_word(sem_t *s)
{
    return &fz_glibc_sem(s)->data;
}

static inline bool fz_sem_try_take(sem_t *sem)
{
    struct fz_glibc_sem *s = fz_glibc_sem(sem);
    uint64_t d = atomic_load(&s->data);
    while (d & FZ_GLIBC_SEM_VALUE)
        if (atomic_compare_exchange_weak(&s->data, &d, d - 1))
            return true;
    return false;
}

static inline void fz_sem_wait_begin(sem_t *s)
{
    atomic_fetch_add(&fz_glibc_sem(s)->data, FZ_GLIBC_SEM_WAITER);
}

static inline void fz_sem_wait_end(sem_t *s)
{
    atomic_fetch_sub(&fz_glibc_sem(s)->data, FZ_GLIBC_SEM_WAITER);
}

/* Park while this holds; ctx is the sem_t. */
static inline bool fz_sem_may_park(void *ctx)
{
    return (atomic_load(&fz_glibc_sem(ctx)->data) & FZ_GLIBC_SEM_VALUE) == 0;
}

/* sem_post's change: 0 or EOVERFLOW; *wake says a waiter may be parked. */
static inline int fz_sem_add_one(sem_t *sem, bool *wake)
{
    struct fz_glibc_sem *s = fz_glibc_sem(sem);
    uint64_t d = atomic_load(&s->data);
    do {
        if ((d & FZ_GLIBC_SEM_VALUE) == SEM_VALUE_MAX)
            return EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&s->data, &d, d + 1));
    *wake = d >= FZ_GLIBC_SEM_WAITER;
    return 0;
}

static inline int fz_sem_real_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
    return fz_real.sem_clockwait(s, clock, abs);
}

/* ==== barriers ========================================================
 * glibc's own barrier algorithm (barrier.c, the same from 2.34 to 2.42)
 * runs on glibc's own fields, for private and process-shared barriers
 * alike, so a shared one works with the other process's glibc. */

struct fz_barrier_view {
    atomic_uint *in, *current_round, *out;
    unsigned count;
    bool shared; /* wait by polling, wake with shared futex wakes */
};

struct fz_glibc_barrier {
    atomic_uint in;
    atomic_uint current_round;
    unsigned count;
    int shared;
    atomic_uint out;
};
_Static_assert(sizeof(struct fz_glibc_barrier) <= sizeof(pthread_barrier_t), "barrier layout");

/* Fill *v for our ticket algorithm; false if the libc's own protocol must
 * run instead (never on glibc). */
static inline bool fz_barrier_view(pthread_barrier_t *barrier, struct fz_barrier_view *v)
{
    struct fz_glibc_barrier *b = (struct fz_glibc_barrier *)barrier;
    *v = (struct fz_barrier_view){&b->in, &b->current_round, &b->out, b->count, b->shared != 0};
    return true;
}

static inline bool fz_barrier_shared(pthread_barrier_t *barrier)
{
    return ((struct fz_glibc_barrier *)barrier)->shared != 0;
}

static inline int fz_barrier_libc_wait(pthread_barrier_t *barrier)
{
    return fz_real.pthread_barrier_wait(barrier); /* not reached: fz_barrier_view said yes */
}

static inline int fz_barrier_libc_destroy(pthread_barrier_t *barrier)
{
    return fz_real.pthread_barrier_destroy(barrier);
}

/* ==== spinlocks ======================================================
 * glibc x86_64: the int is positive when free, 0 or less when held. */
static inline bool fz_spin_looks_free(int word)
{
    return word > 0;
}

#endif
