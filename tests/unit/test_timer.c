/* Unit test for runtime/timer.c, the hierarchical timer wheel.
 *
 * Every run uses a fixed PRNG seed, so a failure reproduces exactly.  The
 * checks lean on one strong property: fz_wheel_advance(now) hands out a
 * timer exactly at the first advance whose `now` reaches its deadline --
 * not earlier (deadline > now) and not later (deadline <= the previous
 * advance's now, when that advance came after the insert).
 *
 * Usage: test_timer [N]   N = timers in the big test (default 1000000). */
#include "runtime/timer.h"

#include "tap.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define US 1000ull
#define MS (1000 * US)
#define SEC (1000 * MS)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)
#define YEAR (365 * DAY)

/* ---- deterministic randomness ---- */

static uint64_t rng_state = 0x5eed0f1be4f00dull;

static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t n)
{
    return rng_next() % n;
}

/* A value below 2^max_bits whose magnitude is spread evenly over 0..max_bits
 * bits, so one run exercises every wheel level. */
static uint64_t rng_magnitude(unsigned max_bits)
{
    unsigned bits = (unsigned)rng_below(max_bits + 1);
    return bits ? rng_next() >> (64 - bits) : 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static double elapsed_ms(const struct timespec *from)
{
    struct timespec to;
    clock_gettime(CLOCK_MONOTONIC, &to);
    return (double)(to.tv_sec - from->tv_sec) * 1e3 + (double)(to.tv_nsec - from->tv_nsec) / 1e6;
}

/* ---- harness: a wheel plus bookkeeping of what must fire when ---- */

struct rec {
    struct fz_timer timer;
    uint64_t inserted_after; /* advances completed before the insert */
    bool cancelled, fired;
};

struct harness {
    struct fz_wheel wheel;
    uint64_t now;      /* time of the latest advance (or of init) */
    uint64_t advances; /* advances completed */
    uint64_t armed;    /* what the wheel's count should say */
    uint64_t fired, early, late, twice, stray, miscount;
};

static void harness_init(struct harness *h, uint64_t now)
{
    *h = (struct harness){.now = now};
    fz_wheel_init(&h->wheel, now);
}

static void harness_arm(struct harness *h, struct rec *r, uint64_t deadline)
{
    *r = (struct rec){.inserted_after = h->advances};
    r->timer.deadline = deadline;
    r->timer.owner = r;
    fz_wheel_insert(&h->wheel, &r->timer);
    h->armed++;
}

static void harness_cancel(struct harness *h, struct rec *r)
{
    if (r->timer.armed)
        h->armed--;
    fz_wheel_cancel(&h->wheel, &r->timer);
    r->cancelled = true;
}

/* A timer handed out at this advance is late if an earlier advance made
 * after its insert had already reached its deadline. */
static void check_expired(struct harness *h, struct fz_timer *t, uint64_t prev_now, uint64_t now)
{
    struct rec *r = t->owner;
    if (r->fired)
        h->twice++;
    if (r->cancelled || t->armed)
        h->stray++;
    if (t->deadline > now)
        h->early++;
    if (r->inserted_after < h->advances && t->deadline <= prev_now)
        h->late++;
    r->fired = true;
}

/* Timers an advance may move per call (fz_wheel_advance's budget), as
 * the driver's batches do; harness_advance calls until it is done, so one
 * harness advance is one fz_timers_fire.  UINT_MAX: one call. */
static unsigned advance_budget = UINT_MAX;
/* Calls that handed out more than the budget, or stopped early without
 * saying "due now" through next_deadline. */
static uint64_t over_budget, quiet_stops;

/* Called between two calls of one harness advance (a batch boundary),
 * where the driver drops its lock and fibers arm and cancel timers. */
static void (*between_batches)(struct harness *h, uint64_t now);

/* Times never go backwards here, so "late" above stays meaningful. */
static unsigned harness_advance(struct harness *h, uint64_t now)
{
    unsigned total = 0;
    for (bool done = false; !done;) {
        struct fz_timer *expired = NULL;
        unsigned n = fz_wheel_advance(&h->wheel, now, advance_budget, &expired, &done), seen = 0;
        for (struct fz_timer *t = expired; t; t = t->next, seen++)
            check_expired(h, t, h->now, now);
        if (seen != n)
            h->miscount++;
        if (n > advance_budget)
            over_budget++;
        if (!done && fz_wheel_next_deadline(&h->wheel) > now)
            quiet_stops++;
        h->fired += n;
        h->armed -= n;
        total += n;
        if (!done && between_batches)
            between_batches(h, now);
    }
    h->now = now;
    h->advances++;
    return total;
}

static void report_dirty(const struct harness *h)
{
    printf("# early %llu late %llu twice %llu stray %llu miscount %llu count %llu/%llu\n",
           (unsigned long long)h->early, (unsigned long long)h->late, (unsigned long long)h->twice,
           (unsigned long long)h->stray, (unsigned long long)h->miscount,
           (unsigned long long)h->wheel.count, (unsigned long long)h->armed);
}

static bool harness_clean(const struct harness *h)
{
    bool clean = !h->early && !h->late && !h->twice && !h->stray && !h->miscount &&
                 h->wheel.count == h->armed;
    if (!clean)
        report_dirty(h);
    return clean;
}

/* White-box: every occupied bit has a list and vice versa, links agree,
 * each timer knows its slot, and the lists hold exactly `count` timers. */
static bool wheel_consistent(const struct fz_wheel *w)
{
    uint64_t total = 0;
    for (unsigned l = 0; l < FZ_WHEEL_LEVELS; l++) {
        for (unsigned s = 0; s < FZ_WHEEL_SLOTS; s++) {
            bool bit = (w->occupied[l] >> s) & 1;
            if (bit != (w->slots[l][s] != NULL))
                return false;
            const struct fz_timer *prev = NULL;
            for (const struct fz_timer *t = w->slots[l][s]; t; prev = t, t = t->next) {
                if (t->prev != prev || !t->armed || t->level != l || t->slot != s)
                    return false;
                if (++total > w->count)
                    return false; /* also stops on a cycle */
            }
        }
    }
    return total == w->count;
}

static bool wheel_empty(const struct fz_wheel *w)
{
    for (unsigned l = 0; l < FZ_WHEEL_LEVELS; l++)
        if (w->occupied[l])
            return false;
    return w->count == 0 && fz_wheel_next_deadline(w) == UINT64_MAX;
}

static bool all_armed_after(const struct rec *recs, size_t n, uint64_t now)
{
    for (size_t i = 0; i < n; i++)
        if (recs[i].timer.armed && recs[i].timer.deadline <= now)
            return false;
    return true;
}

static uint64_t min_armed_deadline(const struct rec *recs, size_t n)
{
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (recs[i].timer.armed && recs[i].timer.deadline < min)
            min = recs[i].timer.deadline;
    return min;
}

static struct harness h; /* the wheel is 4 KiB: keep it off the stack */

/* ---- tests ---- */

static void test_empty(void)
{
    harness_init(&h, 5 * SEC);
    TAP_CHECK(wheel_empty(&h.wheel), "empty: fresh wheel has nothing armed");
    struct fz_timer *expired = NULL;
    bool done;
    TAP_CHECK(fz_wheel_advance(&h.wheel, UINT64_MAX / 2, UINT_MAX, &expired, &done) == 0 &&
                  !expired && done,
              "empty: advancing an empty wheel far hands out nothing");
    TAP_CHECK(wheel_empty(&h.wheel), "empty: still empty after a jump");
}

static void test_slot_bits(void)
{
    static struct rec r[4];
    harness_init(&h, 1 * SEC);
    harness_arm(&h, &r[0], 1 * SEC + 10 * MS);
    unsigned level = r[0].timer.level, slot = r[0].timer.slot;
    TAP_CHECK(r[0].timer.armed && ((h.wheel.occupied[level] >> slot) & 1) && h.wheel.count == 1,
              "bits: insert marks the slot occupied");
    harness_cancel(&h, &r[0]);
    TAP_CHECK(!r[0].timer.armed && !r[0].timer.next && !r[0].timer.prev && wheel_empty(&h.wheel),
              "bits: cancelling the only timer in a slot clears its bit");

    /* Three timers in one tick share a slot; unlink from each list position. */
    for (int i = 0; i < 3; i++)
        harness_arm(&h, &r[i], 1 * SEC + 10 * MS + (uint64_t)i);
    bool same_slot = r[1].timer.level == r[0].timer.level && r[1].timer.slot == r[0].timer.slot &&
                     r[2].timer.level == r[0].timer.level && r[2].timer.slot == r[0].timer.slot;
    TAP_CHECK(same_slot && wheel_consistent(&h.wheel), "bits: same-tick timers share a slot");
    level = r[0].timer.level;
    slot = r[0].timer.slot;
    harness_cancel(&h, &r[1]);
    TAP_CHECK(wheel_consistent(&h.wheel) && ((h.wheel.occupied[level] >> slot) & 1),
              "bits: cancel from the middle of a list keeps the slot");
    harness_cancel(&h, &r[2]); /* the head: inserted last */
    harness_cancel(&h, &r[0]);
    TAP_CHECK(wheel_consistent(&h.wheel) && wheel_empty(&h.wheel),
              "bits: cancelling head then tail empties the slot");
}

static void test_cancel(void)
{
    enum { N = 4000 };
    static struct rec r[N];
    harness_init(&h, 3 * SEC);
    for (size_t i = 0; i < N; i++)
        harness_arm(&h, &r[i], 3 * SEC + rng_magnitude(40));
    size_t cancelled = 0;
    for (size_t i = 0; i < N; i++) {
        if (rng_below(3) == 0) {
            harness_cancel(&h, &r[i]);
            cancelled++;
        }
    }
    TAP_CHECK(wheel_consistent(&h.wheel) && h.wheel.count == N - cancelled,
              "cancel: %zu of %d cancelled, lists consistent", cancelled, N);
    /* Cancel half of the survivors while they are in flight. */
    uint64_t now = 3 * SEC;
    while (h.wheel.count) {
        now = add_sat(now, rng_magnitude(36));
        harness_advance(&h, now);
        size_t i = (size_t)rng_below(N);
        if (r[i].timer.armed && rng_below(2)) {
            harness_cancel(&h, &r[i]);
            cancelled++;
        }
    }
    TAP_CHECK(harness_clean(&h) && h.fired == N - cancelled,
              "cancel: cancelled timers never fire, the other %llu fire on time",
              (unsigned long long)h.fired);

    /* r[] now holds only fired or cancelled timers. */
    static struct rec keep;
    harness_arm(&h, &keep, now + MS);
    size_t fired_one = 0;
    while (!r[fired_one].fired)
        fired_one++;
    fz_wheel_cancel(&h.wheel, &r[fired_one].timer);
    fz_wheel_cancel(&h.wheel, &r[fired_one].timer);
    TAP_CHECK(h.wheel.count == 1 && keep.timer.armed && wheel_consistent(&h.wheel),
              "cancel: cancel after expiry (twice) is harmless");
    harness_advance(&h, now + MS);
    TAP_CHECK(keep.fired && harness_clean(&h) && wheel_empty(&h.wheel),
              "cancel: the remaining timer still fires");
}

static void test_rearm(void)
{
    static struct rec r;
    harness_init(&h, 0);
    harness_arm(&h, &r, 5 * SEC);
    r.timer.deadline = 2 * SEC; /* insert on an armed timer moves it */
    fz_wheel_insert(&h.wheel, &r.timer);
    TAP_CHECK(h.wheel.count == 1 && wheel_consistent(&h.wheel), "rearm: insert of an armed timer");
    harness_advance(&h, 2 * SEC);
    TAP_CHECK(r.fired && harness_clean(&h) && wheel_empty(&h.wheel),
              "rearm: fires at its new deadline");
}

static void test_near(void)
{
    /* Deadlines inside one tick and around tick edges, stepped ns by ns. */
    const uint64_t base = 1000 * FZ_WHEEL_TICK_NS; /* on a tick edge */
    static const uint64_t offsets[] = {1,   2,    3,    100,  511,  512,  700,
                                       700, 1023, 1024, 1025, 2047, 2048, 2049};
    enum { N = sizeof offsets / sizeof offsets[0] };
    static struct rec r[N];
    harness_init(&h, base);
    for (size_t i = 0; i < N; i++)
        harness_arm(&h, &r[i], base + offsets[i]);
    bool exact = true, bounded = true;
    for (uint64_t now = base; now <= base + 2100; now++) {
        harness_advance(&h, now);
        exact = exact && all_armed_after(r, N, now);
        bounded = bounded && fz_wheel_next_deadline(&h.wheel) <= min_armed_deadline(r, N);
    }
    TAP_CHECK(exact && harness_clean(&h) && h.fired == N,
              "near: sub-tick deadlines fire at the exact ns, none early");
    TAP_CHECK(bounded, "near: next_deadline never later than the earliest, ns by ns");

    /* A deadline equal to now fires on the very next advance. */
    static struct rec at_now;
    harness_arm(&h, &at_now, h.now);
    TAP_CHECK(fz_wheel_next_deadline(&h.wheel) <= h.now, "near: next_deadline for deadline==now");
    harness_advance(&h, h.now);
    TAP_CHECK(at_now.fired && harness_clean(&h),
              "near: deadline == now fires without time passing");

    /* Sub-microsecond step from a tick's middle. */
    static struct rec mid;
    harness_arm(&h, &mid, h.now + 300);
    harness_advance(&h, h.now + 299);
    TAP_CHECK(!mid.fired, "near: not at deadline-1ns");
    harness_advance(&h, h.now + 1);
    TAP_CHECK(mid.fired && harness_clean(&h) && wheel_empty(&h.wheel), "near: fires at deadline");
}

static void test_past(void)
{
    static struct rec r[5];
    harness_init(&h, 10 * SEC);
    harness_advance(&h, 20 * SEC + 333);
    const uint64_t past[] = {0, 1, 10 * SEC, 20 * SEC, 20 * SEC + 333};
    for (size_t i = 0; i < 5; i++)
        harness_arm(&h, &r[i], past[i]);
    TAP_CHECK(fz_wheel_next_deadline(&h.wheel) <= min_armed_deadline(r, 5),
              "past: next_deadline not later than a past deadline");
    TAP_CHECK(wheel_consistent(&h.wheel), "past: filed consistently");
    unsigned n = harness_advance(&h, h.now); /* no time passes */
    TAP_CHECK(n == 5 && harness_clean(&h) && wheel_empty(&h.wheel),
              "past: deadlines in the past (and 0) expire on the next advance");

    /* An advance to an older time still hands out exactly what is due by it. */
    static struct rec later, old;
    harness_arm(&h, &later, h.now + MS);
    harness_arm(&h, &old, 1 * SEC);
    struct fz_timer *expired = NULL;
    bool done;
    unsigned n_old = fz_wheel_advance(&h.wheel, 5 * SEC, UINT_MAX, &expired, &done);
    TAP_CHECK(n_old == 1 && done && expired == &old.timer && !old.timer.armed && later.timer.armed,
              "past: an advance to an older time hands out only what is due by then");
    h.armed--;
    harness_advance(&h, h.now + MS);
    TAP_CHECK(later.fired && wheel_empty(&h.wheel), "past: later timer fires normally after");
}

/* Drive the wheel the way the driver does: sleep until next_deadline, advance.
 * Returns how many wakeups it took; *spins counts advances at a time not
 * later than the previous one (next_deadline already passed). */
static unsigned drive_until_fired(struct rec *r, uint64_t *spins)
{
    unsigned wakeups = 0;
    *spins = 0;
    while (!r->fired && wakeups < 10000 && *spins < 100000) {
        uint64_t next = fz_wheel_next_deadline(&h.wheel);
        if (next > r->timer.deadline)
            return 0; /* would oversleep */
        if (next > h.now) {
            harness_advance(&h, next);
            wakeups++;
        } else {
            harness_advance(&h, h.now + 1); /* real time creeps on */
            (*spins)++;
        }
    }
    return wakeups;
}

static void test_far(void)
{
    static const struct {
        const char *what;
        uint64_t delay;
    } cases[] = {
        {"1 us", US},
        {"1 ms", MS},
        {"1 s", SEC},
        {"1 hour", HOUR},
        {"1 day", DAY},
        {"30 days", 30 * DAY},
        {"1 year", YEAR},
        {"9 years", 9 * YEAR},
        {"10 years", 10 * YEAR},
        {"300 years", 300 * YEAR},
        {"to UINT64_MAX-1", 0},
        {"to UINT64_MAX", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        static struct rec r;
        harness_init(&h, 7 * SEC + 12345);
        uint64_t deadline = h.now + cases[i].delay;
        if (cases[i].delay <= 1)
            deadline = UINT64_MAX - 1 + cases[i].delay;
        harness_arm(&h, &r, deadline);
        uint64_t spins;
        unsigned wakeups = drive_until_fired(&r, &spins);
        /* Each cascade drops a level; past the top span, one per 2^48-tick round. */
        TAP_CHECK(r.fired && harness_clean(&h) && wheel_empty(&h.wheel) && wakeups >= 1 &&
                      wakeups <= 2 * FZ_WHEEL_LEVELS + 64 && spins == 0,
                  "far: %s fires exactly when driven by next_deadline (%u wakeups, %llu spins)",
                  cases[i].what, wakeups, (unsigned long long)spins);
    }

    /* Far timers among near ones, one huge jump. */
    static struct rec mix[6];
    harness_init(&h, 0);
    const uint64_t deadlines[] = {5 * HOUR,   3 * DAY,        2 * YEAR,
                                  100 * YEAR, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < 6; i++)
        harness_arm(&h, &mix[i], deadlines[i]);
    harness_advance(&h, 5 * HOUR - 1);
    TAP_CHECK(h.fired == 0, "far: nothing fires a ns before the first far deadline");
    harness_advance(&h, 50 * YEAR);
    TAP_CHECK(h.fired == 3 && all_armed_after(mix, 6, h.now), "far: jump to 50 years fires 3");
    harness_advance(&h, UINT64_MAX - 2);
    TAP_CHECK(h.fired == 4, "far: jump to UINT64_MAX-2 fires the 100-year timer only");
    harness_advance(&h, UINT64_MAX);
    TAP_CHECK(h.fired == 6 && harness_clean(&h) && wheel_empty(&h.wheel),
              "far: advance to UINT64_MAX fires everything");
}

static void test_next_deadline_exact(void)
{
    static struct rec r[3], many[20];
    const uint64_t base = 1 * SEC + 500;
    harness_init(&h, base);
    harness_arm(&h, &r[0], base + 7 * MS);
    uint64_t far = fz_wheel_next_deadline(&h.wheel);
    TAP_CHECK(far > base && far <= base + 7 * MS,
              "next_deadline: an upper-level timer gives a bound in the future");
    harness_arm(&h, &r[1], base + 5 * US + 3);
    harness_arm(&h, &r[2], base + 5 * US);
    TAP_CHECK(fz_wheel_next_deadline(&h.wheel) == base + 5 * US,
              "next_deadline: exact for a short level-0 list");
    harness_advance(&h, base + 5 * US);
    TAP_CHECK(r[2].fired && !r[1].fired && fz_wheel_next_deadline(&h.wheel) == base + 5 * US + 3,
              "next_deadline: exact for what is left of a partly elapsed tick");
    harness_advance(&h, base + 5 * US + 3);
    harness_cancel(&h, &r[0]);

    /* More same-tick timers than next_deadline reads, one of them armed in
     * the past (filed in the current tick): a bound, still sound. */
    for (size_t i = 0; i < 20; i++)
        harness_arm(&h, &many[i], i == 10 ? 1 : h.now + 20 - i);
    uint64_t bound = fz_wheel_next_deadline(&h.wheel);
    TAP_CHECK(bound <= min_armed_deadline(many, 20),
              "next_deadline: not later than a past deadline among 20 same-tick timers");
    harness_advance(&h, h.now + 20);
    TAP_CHECK(h.fired == 22 && harness_clean(&h) && wheel_empty(&h.wheel),
              "next_deadline: those 20 fire");
}

static void test_random_ordering(void)
{
    enum { N = 3000 };
    static struct rec r[N];
    harness_init(&h, 42 * SEC + 17);
    for (size_t i = 0; i < N; i++)
        harness_arm(&h, &r[i], h.now + rng_magnitude(34)); /* up to ~17 s */
    bool exact = true, consistent = true;
    unsigned steps = 0;
    while (h.wheel.count && steps < 100000) {
        harness_advance(&h, h.now + rng_magnitude(26)); /* up to ~67 ms */
        exact = exact && all_armed_after(r, N, h.now);
        if (steps++ % 64 == 0)
            consistent = consistent && wheel_consistent(&h.wheel);
    }
    TAP_CHECK(exact && consistent && harness_clean(&h) && h.fired == N,
              "ordering: %d random timers each fire at the first advance past it (%u steps)", N,
              steps);
}

static void test_next_deadline_random(void)
{
    enum { N = 512, OPS = 200000 };
    static struct rec r[N];
    memset(r, 0, sizeof r); /* none armed: test_small_budget runs this twice */
    harness_init(&h, 1 * SEC);
    unsigned bad = 0, oversleep = 0;
    for (unsigned op = 0; op < OPS; op++) {
        struct rec *x = &r[rng_below(N)];
        unsigned what = (unsigned)rng_below(10);
        if (what < 4 && !x->timer.armed) {
            uint64_t when = rng_below(8) ? h.now + rng_magnitude(44) : rng_below(h.now + 1);
            if (rng_below(100) == 0)
                when = UINT64_MAX - rng_below(1000);
            harness_arm(&h, x, when);
        } else if (what < 6) {
            harness_cancel(&h, x);
        } else {
            /* Sometimes sleep to next_deadline, as the driver would, but not
             * towards the UINT64_MAX timers: time would run out. */
            uint64_t next = fz_wheel_next_deadline(&h.wheel);
            bool sleep = next > h.now && next - h.now < (1ull << 44) && rng_below(2);
            harness_advance(&h, sleep ? next : h.now + rng_magnitude(30));
            if (!all_armed_after(r, N, h.now))
                oversleep++;
        }
        uint64_t next = fz_wheel_next_deadline(&h.wheel), min = min_armed_deadline(r, N);
        if (next > min || (h.wheel.count == 0) != (next == UINT64_MAX))
            bad++;
    }
    TAP_CHECK(bad == 0 && oversleep == 0 && harness_clean(&h) && wheel_consistent(&h.wheel),
              "next_deadline: never later than the true minimum over %d random ops (%llu fired)",
              OPS, (unsigned long long)h.fired);
}

static void test_big_jumps(void)
{
    enum { N = 2000 };
    static struct rec r[N];
    harness_init(&h, 100 * SEC);
    for (size_t i = 0; i < N; i++)
        harness_arm(&h, &r[i], add_sat(h.now, rng_magnitude(63)));
    static const uint64_t jumps[] = {MS, SEC, HOUR, DAY, 30 * DAY, YEAR, 10 * YEAR, 100 * YEAR};
    bool exact = true;
    for (size_t i = 0; i < sizeof jumps / sizeof jumps[0]; i++) {
        harness_advance(&h, h.now + jumps[i]);
        exact = exact && all_armed_after(r, N, h.now);
    }
    harness_advance(&h, UINT64_MAX);
    TAP_CHECK(exact && harness_clean(&h) && h.fired == N && wheel_empty(&h.wheel),
              "jumps: %d timers over 63 bits of ns, advanced in huge jumps", N);

    /* Few timers, many day-long jumps: must skip empty slots, not walk ticks
     * (a day is 8e10 ticks). */
    enum { FEW = 16, HOPS = 20000 };
    harness_init(&h, 0);
    for (size_t i = 0; i < FEW; i++)
        harness_arm(&h, &r[i], rng_below(HOPS * DAY));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < HOPS; i++)
        harness_advance(&h, h.now + DAY - rng_below(HOUR));
    printf("# %d day-long advances with %d timers: %.2f ms\n", HOPS, FEW, elapsed_ms(&t0));
    TAP_CHECK(harness_clean(&h) && h.fired == FEW, "jumps: %d day-long advances fire all %d", HOPS,
              FEW);
}

static void test_million(size_t n)
{
    struct rec *r = calloc(n, sizeof *r);
    if (!r) {
        TAP_CHECK(0, "million: calloc");
        return;
    }
    const uint64_t start = 1000 * SEC, span = 10 * SEC;
    harness_init(&h, start);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n; i++) {
        /* 1% far out (up to a year), a few already due, the rest within 10 s. */
        uint64_t roll = rng_below(100);
        uint64_t deadline = roll == 0   ? start + rng_below(YEAR)
                            : roll == 1 ? rng_below(start + 1)
                                        : start + rng_below(span);
        harness_arm(&h, &r[i], deadline);
    }
    double insert_ms = elapsed_ms(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t cancelled = 0;
    for (size_t i = 0; i < n; i++) {
        if (rng_next() & 1) {
            harness_cancel(&h, &r[i]);
            cancelled++;
        }
    }
    double cancel_ms = elapsed_ms(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned steps = 0;
    while (h.now < start + span) {
        harness_advance(&h, h.now + rng_below(2 * MS)); /* ~10k advances */
        steps++;
    }
    harness_advance(&h, start + YEAR);
    double advance_ms = elapsed_ms(&t0);
    printf("# %zu timers: insert %.1f ms, cancel %zu in %.1f ms, %u advances firing %llu in %.1f "
           "ms\n",
           n, insert_ms, cancelled, cancel_ms, steps + 1, (unsigned long long)h.fired, advance_ms);
    TAP_CHECK(h.fired == n - cancelled && harness_clean(&h) && wheel_empty(&h.wheel),
              "million: %zu inserted, %zu cancelled, the rest fire exactly once, none early or "
              "late",
              n, cancelled);
    free(r);
}

/* ---- budgeted advances (the driver's batches) ---- */

enum { BATCH_N = 20000, BATCH_EXTRA = 4000 };
static struct rec batch_r[BATCH_N + BATCH_EXTRA];
static size_t batch_extra;
static uint64_t batch_stops, batch_bad_next;

/* At a stop: arm a timer (some due already, some earlier than timers not
 * yet cascaded), cancel one, and check that next_deadline still bounds
 * the earliest armed deadline. */
static void batch_meddle(struct harness *hh, uint64_t now)
{
    batch_stops++;
    if (batch_extra < BATCH_EXTRA) {
        uint64_t roll = rng_below(4);
        uint64_t when = roll == 0 ? now - rng_below(MS) : now + rng_below(roll * 20 * MS);
        harness_arm(hh, &batch_r[BATCH_N + batch_extra++], when);
    }
    struct rec *x = &batch_r[rng_below(BATCH_N + batch_extra)];
    if (x->timer.armed && rng_below(4) == 0)
        harness_cancel(hh, x);
    if (fz_wheel_next_deadline(&hh->wheel) > min_armed_deadline(batch_r, BATCH_N + batch_extra))
        batch_bad_next++;
}

static void test_batches(void)
{
    /* many_sleepers' shape: every timer 100-150 ms out, so all of them sit
     * in one or two upper slots until those cascade. */
    const uint64_t base = 77 * SEC + 4321;
    harness_init(&h, base);
    for (size_t i = 0; i < BATCH_N; i++)
        harness_arm(&h, &batch_r[i], base + 100 * MS + rng_below(50 * MS));
    advance_budget = 64;
    over_budget = quiet_stops = 0;
    between_batches = batch_meddle;
    bool exact = true, consistent = true;
    unsigned steps = 0;
    while (h.wheel.count && steps < 100000) {
        harness_advance(&h, h.now + rng_magnitude(22)); /* up to ~4 ms */
        exact = exact && all_armed_after(batch_r, BATCH_N + batch_extra, h.now);
        if (steps++ % 16 == 0)
            consistent = consistent && wheel_consistent(&h.wheel);
    }
    between_batches = NULL;
    advance_budget = UINT_MAX;
    TAP_CHECK(batch_stops >= BATCH_N / 64 && over_budget == 0,
              "batches: a budget of 64 moves %d timers in %llu stops, none handing out more",
              BATCH_N, (unsigned long long)batch_stops);
    TAP_CHECK(exact && consistent && harness_clean(&h) && quiet_stops == 0 && batch_bad_next == 0,
              "batches: timers armed and cancelled between batches, none early or late, "
              "next_deadline sound at every stop (%llu fired)",
              (unsigned long long)h.fired);
}

/* The randomised tests again, the wheel advanced a few timers at a time. */
static void test_small_budget(void)
{
    advance_budget = 3;
    printf("# the cancel, ordering and next_deadline tests with a budget of 3\n");
    test_cancel();
    test_random_ordering();
    test_next_deadline_random();
    TAP_CHECK(over_budget == 0 && quiet_stops == 0,
              "budget 3: no call handed out more, every early stop said \"due now\"");
    advance_budget = UINT_MAX;
}

int main(int argc, char **argv)
{
    size_t big = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    test_empty();
    test_slot_bits();
    test_cancel();
    test_rearm();
    test_near();
    test_past();
    test_far();
    test_next_deadline_exact();
    test_random_ordering();
    test_next_deadline_random();
    test_big_jumps();
    test_million(big);
    test_batches();
    test_small_budget();
    return tap_done();
}
