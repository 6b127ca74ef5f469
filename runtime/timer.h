/* Hierarchical timer wheel.
 *
 * Invariants: the wheel is a plain data structure with no locking and no
 * libc calls (it runs on the scheduler path where the thread pointer may
 * belong to another fiber).  The owner (runtime/driver.c) serialises every
 * call with its own lock.  Timers are intrusive: the wheel never allocates.
 *
 * Time is absolute CLOCK_MONOTONIC nanoseconds.  A timer never expires before
 * its deadline: fz_wheel_advance(now) only hands out timers whose deadline is
 * <= now.  Resolution is one level-0 tick (FZ_WHEEL_TICK_NS).
 */
#ifndef FZ_TIMER_H
#define FZ_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define FZ_WHEEL_TICK_NS 1024u /* level-0 slot width: ~1 us */
#define FZ_WHEEL_BITS 6        /* 64 slots per level */
#define FZ_WHEEL_SLOTS (1u << FZ_WHEEL_BITS)
#define FZ_WHEEL_LEVELS 8 /* 2^48 ticks ~ 9 years; later deadlines wait in the top level */

/* A level's occupancy is one uint64_t bitmap: a bit per slot. */
_Static_assert(FZ_WHEEL_SLOTS == 64, "occupied[] has a bit per slot");
/* level and slot are uint8_t in struct fz_timer. */
_Static_assert(FZ_WHEEL_LEVELS <= 256 && FZ_WHEEL_SLOTS <= 256, "level and slot fit a byte");

struct fz_timer {
    struct fz_timer *next, *prev; /* slot list links; NULL when not armed */
    uint64_t deadline;            /* absolute monotonic ns */
    uint8_t level, slot;          /* where it is filed (valid while armed) */
    bool armed;
    void *owner; /* for the user of the timer (e.g. the waiting fiber) */
};

struct fz_wheel {
    uint64_t now_tick;                  /* ticks already processed */
    uint64_t occupied[FZ_WHEEL_LEVELS]; /* bit s set <=> slots[l][s] non-empty */
    struct fz_timer *slots[FZ_WHEEL_LEVELS][FZ_WHEEL_SLOTS];
    uint64_t count; /* armed timers */
    /* An upper level whose slot at now_tick is part-way through its
     * cascade (a budgeted advance stopped in it), 0 when none: the next
     * advance finishes it before anything else, so none of its timers is
     * overtaken by the ones already moved down. */
    unsigned cascading;
};

void fz_wheel_init(struct fz_wheel *w, uint64_t now_ns);
/* Arm t (t->deadline set by the caller).  A deadline already in the past is
 * filed so that the next fz_wheel_advance hands it out. */
void fz_wheel_insert(struct fz_wheel *w, struct fz_timer *t);
/* Disarm t if armed; O(1).  Safe on a timer that already expired. */
void fz_wheel_cancel(struct fz_wheel *w, struct fz_timer *t);
/* Earliest instant at which fz_wheel_advance could hand out a timer: never
 * later than the earliest armed deadline (may be earlier for far timers that
 * still need cascading).  UINT64_MAX when nothing is armed. */
uint64_t fz_wheel_next_deadline(const struct fz_wheel *w);
/* Move timers with deadline <= now_ns onto *expired (a singly linked list
 * through ->next, in no particular order), disarming them, and cascade the
 * rest down the levels -- moving about `budget` timers at most, expired or
 * re-filed.  Returns how many expired; *done is true when every timer due
 * by now_ns was handed out, false when the budget ran out first.  A call
 * that stops early leaves the wheel consistent (inserts, cancels and
 * next_deadline all work; next_deadline says "due now") and the next call
 * goes on where it stopped.  The budget is for the wheel's owner, which
 * holds a lock meanwhile: one upper slot can hold every timer armed. */
unsigned fz_wheel_advance(struct fz_wheel *w, uint64_t now_ns, unsigned budget,
                          struct fz_timer **expired, bool *done);

#endif
