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
    X(yields)                                                                                      \
    X(parks_fd)                                                                                    \
    X(parks_addr)                                                                                  \
    X(parks_sleep)                                                                                 \
    X(idle_ns)

struct fz_stats {
#define FZ_STATS_DECL(name) uint64_t name;
    FZ_STATS_FIELDS(FZ_STATS_DECL)
#undef FZ_STATS_DECL
};

/* Print the summed counters of every carrier to stderr: a table, then the
 * same figures on one "fiberize stats: name=value ..." line for scripts. */
void fz_stats_print(void);

/* The runtime started now (uptime and busy % count from here). */
void fz_stats_started(void);

struct fz_view;
/* Fill a view (runtime/statsview.h) from every carrier and the pool. */
void fz_stats_view(struct fz_view *v);

#endif
