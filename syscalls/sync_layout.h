/* The one place the sync layer learns how a C library encodes its pthread
 * objects.
 *
 * mutex.c, cond.c, rwlock.c, sem.c, barrier.c and spin.c keep every lock in the
 * program's own object, so an object stays valid for the libc's functions
 * we do not interpose (init, destroy, getvalue, consistent, the static
 * initializers) and for code that ran before the runtime started.  Where
 * the fields are and what their values mean differs between glibc and
 * musl; so do a few algorithms that must speak the libc's own protocol (a
 * process-shared object is also driven by the libc in another process).
 * Each side header gives the same static inline functions:
 *
 *   mutex    fz_mutex_kind/_special/_type/_pi/_robust, fz_mutex_word (what
 *            waiters park on), fz_mutex_owner, and the simple-kind engine:
 *            fz_mutex_take_plain (uncontended fast path), fz_mutex_try (one
 *            attempt), fz_mutex_wait_begin/_end around the parked part,
 *            fz_mutex_take_waiting, fz_mutex_may_park, fz_mutex_release;
 *            for special kinds fz_mutex_pp_enter/_leave,
 *            fz_mutex_unrecoverable, fz_mutex_real_clocklock
 *   cond     fz_cond_shared, fz_cond_clock, fz_cond_seq/_waiters (our
 *            words), fz_cond_wait_check, fz_cond_shared_wait,
 *            fz_cond_real_clockwait
 *   rwlock   fz_rwlock_shared, fz_rwlock_words (our words and encoding),
 *            fz_rwlock_real_try, fz_rwlock_real_clocklock
 *   sem      fz_sem_shared, fz_sem_word, fz_sem_try_take, fz_sem_wait_begin
 *            /_end, fz_sem_may_park, fz_sem_add_one, fz_sem_real_clockwait
 *   barrier  fz_barrier_view (our ticket algorithm's words), or for musl's
 *            process-shared barriers fz_barrier_libc_wait/_destroy
 *   spin     fz_spin_looks_free (spin.c)
 *
 * The side is chosen by the headers the file is compiled against: glibc's
 * <features.h> defines __GLIBC__, musl defines nothing of the kind.
 */
#ifndef FZ_SYNC_LAYOUT_H
#define FZ_SYNC_LAYOUT_H

#include <pthread.h>

#ifdef __GLIBC__
#include "syscalls/sync_layout_glibc.h"
#else
#include "syscalls/sync_layout_musl.h"
#endif

#endif
