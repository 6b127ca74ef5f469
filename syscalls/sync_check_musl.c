/* Before the runtime starts on musl: do the objects still look the way
 * syscalls/sync_layout_musl.h says musl 1.2.3 makes them?  A musl whose
 * encodings moved would have our waits and its own functions disagree on
 * every lock -- hangs and corruption, not errors -- so the facts are
 * checked here, on musl's own functions (init, trylock, unlock: nothing is
 * interposed yet), and the runtime stays off with one line naming the
 * first fact that did not hold. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include "syscalls/real.h"
#include "syscalls/sync.h"
#include "syscalls/sync_layout.h"

#define CHECK(fact, what)                                                                          \
    do {                                                                                           \
        if (!(fact)) {                                                                             \
            *why = "musl's sync objects are not musl 1.2.3's: " what;                              \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static bool mutexes(const char **why)
{
    pid_t me = fz_tcb_current_tid();
    pthread_mutexattr_t a;
    pthread_mutex_t m;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m, &a);
    CHECK(m.__u.__i[0] == PTHREAD_MUTEX_RECURSIVE, "mutex type in _m_type");
    CHECK(fz_real.pthread_mutex_trylock(&m) == 0 && m.__u.__i[1] == me && m.__u.__i[5] == 0,
          "a recursive mutex's owner tid in _m_lock");
    CHECK(fz_real.pthread_mutex_trylock(&m) == 0 && m.__u.__i[5] == 1,
          "recursion beyond the first lock in _m_count");
    fz_real.pthread_mutex_unlock(&m);
    fz_real.pthread_mutex_unlock(&m);
    CHECK(m.__u.__i[1] == 0 && m.__u.__i[3] == 0 && m.__u.__i[4] == 0, "mutex ints 3 and 4 unused");
    pthread_mutex_init(&m, NULL);
    CHECK(fz_real.pthread_mutex_trylock(&m) == 0 && m.__u.__i[1] == EBUSY,
          "a normal mutex locked is EBUSY in _m_lock");
    fz_real.pthread_mutex_unlock(&m);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&m, &a);
    CHECK(fz_mutex_special(fz_mutex_kind(&m)), "process-shared bit 128 in _m_type");
    return true;
}

static bool conds(const char **why)
{
    pthread_condattr_t a;
    pthread_cond_t c;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&c, &a);
    CHECK(!fz_cond_shared(&c) && fz_cond_clock(&c) == CLOCK_MONOTONIC, "the clock in _c_clock");
    pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_cond_init(&c, &a);
    CHECK(fz_cond_shared(&c), "process-shared in _c_shared");
    pthread_cond_init(&c, NULL);
    fz_real.pthread_cond_broadcast(&c);
    CHECK(*fz_cond_seq(&c) == 0 && *fz_cond_waiters(&c) == 0 && c.__u.__p[1] == NULL &&
              c.__u.__p[5] == NULL,
          "condvar ints 6 and 7 unused, no waiter list");
    return true;
}

static bool rwlocks(const char **why)
{
    pthread_rwlockattr_t a;
    pthread_rwlock_t rw;
    pthread_rwlock_init(&rw, NULL);
    struct fz_rwlock_words l = fz_rwlock_words(&rw);
    CHECK(fz_real.pthread_rwlock_tryrdlock(&rw) == 0 && atomic_load(l.state) == 1,
          "readers counted in _rw_lock");
    fz_real.pthread_rwlock_unlock(&rw);
    CHECK(fz_real.pthread_rwlock_trywrlock(&rw) == 0 && fz_rw_write_locked(atomic_load(l.state)) &&
              atomic_load(l.state) == FZ_RW_WRITE_LOCKED,
          "a writer's 0x7fffffff in _rw_lock");
    fz_real.pthread_rwlock_unlock(&rw);
    CHECK(atomic_load(l.state) == 0 && !fz_rwlock_shared(&rw), "a free rwlock's 0");
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(&rw, &a);
    CHECK(fz_rwlock_shared(&rw), "process-shared in _rw_shared");
    return true;
}

static bool semaphores(const char **why)
{
    sem_t s;
    int value = -1;
    sem_init(&s, 0, 3);
    CHECK(!fz_sem_shared(&s) && fz_sem_try_take(&s), "a private semaphore's value and flag");
    sem_getvalue(&s, &value);
    CHECK(value == 2 && s.__val[1] == 0, "the value in __val[0], waiters in __val[1]");
    sem_init(&s, 1, 0);
    CHECK(fz_sem_shared(&s), "a shared semaphore's 0 in __val[2]");
    return true;
}

static bool barriers(const char **why)
{
    pthread_barrierattr_t a;
    pthread_barrier_t b;
    struct fz_barrier_view v;
    memset(&b, 0xff, sizeof b);
    pthread_barrier_init(&b, NULL, 3);
    CHECK(fz_barrier_view(&b, &v) && v.count == 3 && atomic_load(v.in) == 0 &&
              atomic_load(v.current_round) == 0 && atomic_load(v.out) == 0,
          "a private barrier's count in _b_limit, ints 3 to 5 zeroed");
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&b, &a, 3);
    CHECK(fz_barrier_shared(&b) && (b.__u.__i[2] & INT_MAX) == 2,
          "a shared barrier's bit 31 in _b_limit");
    return true;
}

static bool spinlocks(const char **why)
{
    pthread_spinlock_t s;
    pthread_spin_init(&s, PTHREAD_PROCESS_PRIVATE);
    CHECK(fz_spin_looks_free(s) && pthread_spin_trylock(&s) == 0 && !fz_spin_looks_free(s),
          "a spinlock's 0 when free");
    pthread_spin_unlock(&s);
    return true;
}

bool fz_sync_layout_check(const char **why)
{
    return mutexes(why) && conds(why) && rwlocks(why) && semaphores(why) && barriers(why) &&
           spinlocks(why);
}
