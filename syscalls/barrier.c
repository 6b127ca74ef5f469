/* pthread_barrier_wait/destroy: waiting parks the fiber, never the carrier.
 *
 * We run glibc's barrier algorithm (the same from 2.34 to 2.42) and
 * replace only its two kinds of futex wait and wake.  On glibc it runs on
 * glibc's own fields (in, current_round, count, shared, out:
 * pthread_barrier_init is not interposed), which has two payoffs: a
 * process-shared barrier works with the other process's unhooked glibc (a
 * fork child runs without the runtime), and pthread_barrier_init, which
 * only stores the fields, stays glibc's.  On musl a private barrier runs it
 * on words musl's private barrier never uses, with the count musl's init
 * stored; a process-shared one must speak musl's own protocol, which the
 * other process runs: fz_barrier_libc_wait does that, polling
 * (syscalls/sync_layout.h has both sides).
 *
 * The algorithm, in short: a thread takes ticket i = ++in; rounds are
 * consecutive ranges of `count` tickets; whoever sees its ticket complete a
 * round advances current_round (CAS) and wakes the waiters, the others wait
 * until current_round reaches their ticket.  Every leaver counts `out`; the
 * last one before `in` would pass UINT_MAX/2 resets the three counters,
 * and threads arriving during a reset wait for it.  Exactly one thread per
 * round (ticket divisible by count) gets PTHREAD_BARRIER_SERIAL_THREAD.
 * destroy waits until every thread that entered has left.
 *
 * Waits: private barriers park on the parking lot, keyed by the word's
 * address, re-checking the word under the bucket lock; glibc's shared
 * barriers sleep the fiber with a backoff (50 µs to 1 ms) and re-read, and
 * wake-ups are real shared FUTEX_WAKEs so glibc waiters elsewhere see them.
 * Non-fiber callers of shared barriers use the real functions.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include "runtime/park.h"
#include "syscalls/backoff.h"
#include "syscalls/hook.h"
#include "syscalls/sync_layout.h"

#define IN_THRESHOLD (UINT_MAX / 2)

static unsigned max_in_before_reset(unsigned count)
{
    return IN_THRESHOLD - IN_THRESHOLD % count;
}

struct word_is {
    atomic_uint *word;
    unsigned value;
};

static bool word_still_is(void *ctx)
{
    struct word_is *w = ctx;
    return atomic_load(w->word) == w->value;
}

/* Return once *word != value (or spuriously: the callers re-check). */
static void wait_change(const struct fz_barrier_view *b, atomic_uint *word, unsigned value)
{
    if (!b->shared) {
        struct word_is ctx = {word, value};
        fz_park_addr(word, ~0u, word_still_is, &ctx, 0, FZ_INTR_NONE);
        return;
    }
    struct fz_backoff backoff = fz_backoff_begin(FZ_BACKOFF_WAIT_FIRST_NS);
    while (atomic_load(word) == value)
        fz_backoff_sleep(&backoff, 0, FZ_INTR_NONE);
}

static void wake_all(const struct fz_barrier_view *b, atomic_uint *word)
{
    if (!b->shared)
        fz_unpark_addr(word, ~0u, UINT_MAX);
    else
        fz_futex_wake_shared(word, INT_MAX);
}

/* Our ticket, after waiting out a reset in progress. */
static unsigned enter(const struct fz_barrier_view *b, unsigned max_in)
{
    for (;;) {
        unsigned i = atomic_fetch_add(b->in, 1) + 1;
        if (i <= max_in)
            return i;
        while (i > max_in) {
            wait_change(b, b->in, i);
            i = atomic_load(b->in);
        }
    }
}

/* Complete every round our ticket completes; true if that includes ours. */
static bool finish_rounds(const struct fz_barrier_view *b, unsigned i, unsigned *cr)
{
    while (*cr + b->count <= i) {
        unsigned next = i - i % b->count;
        if (atomic_compare_exchange_weak(b->current_round, cr, next)) {
            *cr = next;
            wake_all(b, b->current_round);
            return i <= next;
        }
    }
    return false;
}

static void leave(const struct fz_barrier_view *b, unsigned max_in)
{
    if (atomic_fetch_add(b->out, 1) + 1 != max_in)
        return;
    /* last thread before the reset point: start over from zero */
    atomic_store(b->current_round, 0);
    atomic_store(b->out, 0);
    atomic_store(b->in, 0);
    wake_all(b, b->in);
}

static bool pass_through(pthread_barrier_t *barrier)
{
    return !fz_hook_active(FZ_HOOK_SYNC) || (fz_barrier_shared(barrier) && !fz_self());
}

FZ_EXPORT int pthread_barrier_wait(pthread_barrier_t *barrier)
{
    if (pass_through(barrier))
        return fz_real.pthread_barrier_wait(barrier);
    fz_schedule_point();
    struct fz_barrier_view view;
    if (!fz_barrier_view(barrier, &view))
        return fz_barrier_libc_wait(barrier);
    /* the count is a copy: the program's barrier may be destroyed once
     * we have left */
    const struct fz_barrier_view *b = &view;
    unsigned max_in = max_in_before_reset(b->count);
    unsigned i = enter(b, max_in);
    unsigned cr = atomic_load(b->current_round);
    if (!finish_rounds(b, i, &cr)) {
        while (i > cr) {
            wait_change(b, b->current_round, cr);
            cr = atomic_load(b->current_round);
        }
    }
    leave(b, max_in);
    return i % b->count == 0 ? PTHREAD_BARRIER_SERIAL_THREAD : 0;
}

/* Pretend the reset point was reached so the last leaver resets the
 * barrier, and wait for that. */
FZ_EXPORT int pthread_barrier_destroy(pthread_barrier_t *barrier)
{
    if (pass_through(barrier))
        return fz_real.pthread_barrier_destroy(barrier);
    struct fz_barrier_view view;
    if (!fz_barrier_view(barrier, &view))
        return fz_barrier_libc_destroy(barrier);
    const struct fz_barrier_view *b = &view;
    unsigned max_in = max_in_before_reset(b->count);
    unsigned in = atomic_load(b->in);
    if (atomic_fetch_add(b->out, max_in - in) < in) {
        while (in != 0) {
            wait_change(b, b->in, in);
            in = atomic_load(b->in);
        }
    }
    return 0;
}
