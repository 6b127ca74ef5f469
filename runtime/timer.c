/* Hierarchical timer wheel (see timer.h for the contract).
 *
 * Invariants, and why they hold:
 *  - A timer's tick is its deadline rounded UP to a tick, so a timer is never
 *    filed earlier than it is due; a deadline already behind now_tick is
 *    clamped to now_tick, whose level-0 slot is "due at the next advance".
 *  - A timer with tick e is filed at the level of the highest 6-bit group in
 *    which e and now_tick differ (level 0 if equal), slot = that group of e.
 *    Since e >= now_tick, every occupied slot of a level below the top one
 *    lies ahead of now_tick's own slot there and inside now_tick's slot of
 *    the next level up.  So the lowest non-empty level always holds the next
 *    slot to process, found with one count-trailing-zeros: no tick-by-tick
 *    walk, however far `now` jumps.
 *  - Moving now_tick forward without touching a timer keeps it correctly
 *    filed as long as now_tick stays before the start of the timer's slot;
 *    advance only ever jumps to the earliest slot start or to the target.
 *  - The top level also takes ticks beyond its 2^48-tick span.  It is read
 *    as a ring: slots behind now_tick's slot there start in the next round.
 *    That start is never after the timer's tick, so such a timer is only
 *    re-filed early (cascaded), never fired late.
 *  - Ticks only decide where a timer waits; whether it fires is decided on
 *    its deadline in ns, so a partly elapsed tick keeps its later timers.
 * Pure computation on purpose: no libc, no locks, no globals (the caller
 * serialises and the thread pointer may belong to someone else).
 */
#include <stddef.h>
#include "runtime/sys.h"
#include "runtime/timer.h"

static int raw_clock_gettime(clockid_t clock, struct timespec *ts)
{
    long r = fz_sys2(SYS_clock_gettime, clock, ts);
    return r < 0 ? -1 : 0;
}

int (*fz_os_clock_gettime)(clockid_t, struct timespec *) = raw_clock_gettime;
uint64_t fz_virtual_ns;

#define TOP_LEVEL (FZ_WHEEL_LEVELS - 1)
#define SLOT_MASK ((uint64_t)FZ_WHEEL_SLOTS - 1)
#define NEXT_DEADLINE_SCAN 8 /* longest slot list next_deadline reads through */

/* Rounding up keeps "filed in tick e" implying "deadline <= e * TICK". */
static uint64_t tick_of(uint64_t ns)
{
    return ns / FZ_WHEEL_TICK_NS + (ns % FZ_WHEEL_TICK_NS != 0);
}

static unsigned level_shift(unsigned level)
{
    return level * FZ_WHEEL_BITS;
}

static unsigned level_for(uint64_t tick, uint64_t now_tick)
{
    uint64_t diff = tick ^ now_tick;
    if (diff == 0)
        return 0;
    unsigned level = (63u - (unsigned)__builtin_clzll(diff)) / FZ_WHEEL_BITS;
    return level < TOP_LEVEL ? level : TOP_LEVEL;
}

static void slot_push(struct fz_wheel *w, struct fz_timer *t, unsigned level, unsigned slot)
{
    struct fz_timer *head = w->slots[level][slot];
    t->prev = NULL;
    t->next = head;
    if (head)
        head->prev = t;
    w->slots[level][slot] = t;
    w->occupied[level] |= 1ull << slot;
    t->level = (uint8_t)level;
    t->slot = (uint8_t)slot;
}

static void slot_unlink(struct fz_wheel *w, struct fz_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        w->slots[t->level][t->slot] = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (!w->slots[t->level][t->slot])
        w->occupied[t->level] &= ~(1ull << t->slot);
    t->next = t->prev = NULL;
}

/* File t relative to the current now_tick (insert and cascade share this). */
static void file_timer(struct fz_wheel *w, struct fz_timer *t)
{
    uint64_t tick = tick_of(t->deadline);
    if (tick < w->now_tick)
        tick = w->now_tick;
    unsigned level = level_for(tick, w->now_tick);
    unsigned slot = (unsigned)((tick >> level_shift(level)) & SLOT_MASK);
    slot_push(w, t, level, slot);
}

/* -1 when nothing is armed. */
static int lowest_busy_level(const struct fz_wheel *w)
{
    for (int level = 0; level < FZ_WHEEL_LEVELS; level++)
        if (w->occupied[level])
            return level;
    return -1;
}

/* Bits of slots strictly after `cur` (level 0 includes cur itself: its
 * current slot is the one due now). */
static uint64_t slots_ahead(uint64_t occupied, unsigned cur, unsigned level)
{
    unsigned first = level == 0 ? cur : cur + 1;
    return first < FZ_WHEEL_SLOTS ? occupied & (~0ull << first) : 0;
}

/* Tick at which the earliest occupied slot of `level` starts.  Only the top
 * level can have nothing ahead (ticks past its span): those slots come up
 * in the next round. */
static uint64_t slot_start_tick(const struct fz_wheel *w, unsigned level, unsigned *slot_out)
{
    unsigned shift = level_shift(level);
    unsigned span_shift = shift + FZ_WHEEL_BITS;
    uint64_t round_start = w->now_tick >> span_shift << span_shift;
    unsigned cur = (unsigned)((w->now_tick >> shift) & SLOT_MASK);
    uint64_t occupied = w->occupied[level];
    uint64_t ahead = slots_ahead(occupied, cur, level);
    if (!ahead) {
        ahead = occupied;
        round_start += 1ull << span_shift;
    }
    unsigned slot = (unsigned)__builtin_ctzll(ahead);
    *slot_out = slot;
    return round_start | (uint64_t)slot << shift;
}

/* Re-file up to `budget` timers of an upper-level slot now that now_tick
 * reached its start: each drops at least one level (or, past the top
 * level's span, waits one more round in the same slot, which is why the
 * top level's slots are moved whole).  Returns how many moved; the slot is
 * done when it is empty.  A slot below the top one that is at now_tick's
 * own position there can only be one part-way through: a timer is filed at
 * the level where its tick and now_tick first differ. */
static unsigned cascade_slot(struct fz_wheel *w, unsigned level, unsigned slot, unsigned budget)
{
    struct fz_timer *t = w->slots[level][slot];
    w->slots[level][slot] = NULL;
    w->occupied[level] &= ~(1ull << slot);
    unsigned moved = 0;
    for (; t && (moved < budget || level == TOP_LEVEL); moved++) {
        struct fz_timer *next = t->next;
        file_timer(w, t);
        t = next;
    }
    if (t) { /* the rest stays, in the same list order */
        t->prev = NULL;
        w->slots[level][slot] = t;
        w->occupied[level] |= 1ull << slot;
    }
    return moved;
}

/* Hand out up to `budget` level-0 timers of `slot` that are due by now_ns;
 * the others (later in a partly elapsed tick) stay. */
static unsigned expire_slot(struct fz_wheel *w, unsigned slot, uint64_t now_ns, unsigned budget,
                            struct fz_timer **expired)
{
    unsigned n = 0;
    struct fz_timer *t = w->slots[0][slot];
    while (t && n < budget) {
        struct fz_timer *next = t->next;
        if (t->deadline <= now_ns) {
            slot_unlink(w, t);
            t->armed = false;
            t->next = *expired;
            *expired = t;
            n++;
        }
        t = next;
    }
    w->count -= n;
    return n;
}

/* Earliest deadline of a slot list, if it is short enough to look at on
 * every call (a bounded scan keeps next_deadline O(1)). */
static bool few_timers_min(const struct fz_timer *t, uint64_t *min)
{
    uint64_t earliest = UINT64_MAX;
    for (unsigned seen = 0; t; t = t->next, seen++) {
        if (seen == NEXT_DEADLINE_SCAN)
            return false;
        if (t->deadline < earliest)
            earliest = t->deadline;
    }
    *min = earliest;
    return true;
}

void fz_wheel_init(struct fz_wheel *w, uint64_t now_ns)
{
    w->now_tick = tick_of(now_ns);
    w->count = 0;
    w->cascading = 0;
    for (unsigned level = 0; level < FZ_WHEEL_LEVELS; level++) {
        w->occupied[level] = 0;
        for (unsigned slot = 0; slot < FZ_WHEEL_SLOTS; slot++) {
            w->slots[level][slot] = NULL;
            /* Compilers turn a plain clearing loop into a memset call (clang
             * -O2, gcc -O3): the empty asm keeps libc out of this file. */
            __asm__ volatile("" ::: "memory");
        }
    }
}

void fz_wheel_insert(struct fz_wheel *w, struct fz_timer *t)
{
    if (t->armed) /* re-arming: move it rather than link it twice */
        fz_wheel_cancel(w, t);
    file_timer(w, t);
    t->armed = true;
    w->count++;
}

void fz_wheel_cancel(struct fz_wheel *w, struct fz_timer *t)
{
    if (!t->armed)
        return;
    slot_unlink(w, t);
    t->armed = false;
    w->count--;
}

uint64_t fz_wheel_next_deadline(const struct fz_wheel *w)
{
    if (w->cascading)
        return 0; /* what is left of that slot is not looked at: "due now" */
    int level = lowest_busy_level(w);
    if (level < 0)
        return UINT64_MAX;
    unsigned slot;
    uint64_t start = slot_start_tick(w, (unsigned)level, &slot);
    uint64_t min;
    /* The earliest level-0 slot holds the earliest deadline: every other
     * timer waits in a later tick.  A short list gives the exact answer,
     * which spares the caller a wake-up (or a spin) one tick early. */
    if (level == 0 && few_timers_min(w->slots[0][slot], &min))
        return min;
    /* The current tick's slot may hold timers armed with past deadlines,
     * which we cannot bound without a long scan: report "due now". */
    if (start <= w->now_tick)
        return 0;
    /* Every timer filed at or after tick `start` has deadline > (start-1) ticks. */
    return (start - 1) * FZ_WHEEL_TICK_NS + 1;
}

/* Cascade what the budget allows of an upper slot now_tick has reached
 * (the one a budgeted advance stopped in, or the next); false when some of
 * it is left, which w->cascading then names. */
static bool cascade_within(struct fz_wheel *w, unsigned level, unsigned slot, unsigned *budget)
{
    unsigned moved = cascade_slot(w, level, slot, *budget);
    *budget = moved < *budget ? *budget - moved : 0; /* the top level's move whole */
    bool left = w->slots[level][slot] && level != TOP_LEVEL;
    w->cascading = left ? level : 0;
    return !left;
}

unsigned fz_wheel_advance(struct fz_wheel *w, uint64_t now_ns, unsigned budget,
                          struct fz_timer **expired, bool *done)
{
    /* Ticks before `target` are wholly <= now_ns; tick `target` may be partly. */
    uint64_t target = tick_of(now_ns);
    if (target < w->now_tick)
        target = w->now_tick; /* time went backwards: only re-check the current slot */
    unsigned n = 0;
    *done = false;
    if (budget == 0)
        budget = 1; /* some progress, always */
    if (w->cascading) {
        unsigned level = w->cascading;
        unsigned slot = (unsigned)((w->now_tick >> level_shift(level)) & SLOT_MASK);
        if (!cascade_within(w, level, slot, &budget))
            return 0;
    }
    for (;;) {
        int level = lowest_busy_level(w);
        if (level < 0)
            break;
        unsigned slot;
        uint64_t start = slot_start_tick(w, (unsigned)level, &slot);
        if (start > target)
            break;
        if (budget == 0 && level > 0)
            return n; /* due work left: now_tick stays where it is */
        w->now_tick = start;
        if (level > 0) {
            if (!cascade_within(w, (unsigned)level, slot, &budget))
                return n;
            continue;
        }
        unsigned got = expire_slot(w, slot, now_ns, budget, expired);
        n += got;
        budget -= got;
        if (budget == 0 && w->slots[0][slot]) {
            /* maybe more due here: look again next time */
            for (struct fz_timer *t = w->slots[0][slot]; t; t = t->next)
                if (t->deadline <= now_ns)
                    return n;
        }
        if (start == target)
            break; /* what is left is due later within this tick */
    }
    if (w->now_tick < target)
        w->now_tick = target;
    *done = true;
    return n;
}
