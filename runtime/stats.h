/* Runtime counters.  Each carrier owns one struct fz_stats and is its only
 * writer (plain increments, no atomics on the hot path); readers sum them on
 * demand and accept slightly stale values. */
#ifndef FZ_STATS_H
#define FZ_STATS_H

#include <stdint.h>

#define FZ_STATS_FIELDS(X)                                                                         \
    X(fibers_created)                                                                              \
    X(fibers_exited)                                                                               \
    X(switches)                                                                                    \
    X(tp_writes)                                                                                   \
    X(steals)                                                                                      \
    X(inject_pops)                                                                                 \
    X(parks)                                                                                       \
    X(wakes)                                                                                       \
    X(idle_sleeps)                                                                                 \
    X(driver_polls)                                                                                \
    X(timers_fired)                                                                                \
    X(yields)

struct fz_stats {
#define FZ_STATS_DECL(name) uint64_t name;
    FZ_STATS_FIELDS(FZ_STATS_DECL)
#undef FZ_STATS_DECL
};

/* Print the summed counters of every carrier to stderr. */
void fz_stats_print(void);

#endif
