/* Runtime figures as shown to people and machines: one flat record, its
 * JSON form and its table.  Shared by the library (FIBERIZE_STATS at exit,
 * the control socket's answer) and the fiberize command (`fiberize stats
 * PID`, which parses the JSON back and adds rates), so both print the same
 * table.  Pure formatting: no runtime state here (runtime/stats.c fills a
 * view from the carriers), which is why scripts/fiberize.c may include it.
 */
#ifndef FZ_STATSVIEW_H
#define FZ_STATSVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* name, C for a counter (rates make sense) or G for a gauge, words */
#define FZ_VIEW_FIELDS(X)                                                                          \
    X(fibers_live, G, "fibers alive now")                                                          \
    X(fibers_created, C, "fibers created")                                                         \
    X(fibers_exited, C, "fibers exited")                                                           \
    X(switches, C, "context switches")                                                             \
    X(steals, C, "fibers stolen from another carrier")                                             \
    X(inject_pops, C, "fibers taken from the global queue")                                        \
    X(tp_writes, C, "thread-pointer writes")                                                       \
    X(parks, C, "parks")                                                                           \
    X(parks_fd, C, "  on an fd")                                                                   \
    X(parks_addr, C, "  on a lock, condition, join or pool call")                                  \
    X(parks_sleep, C, "  in a sleep")                                                              \
    X(wakes, C, "wake-ups")                                                                        \
    X(yields, C, "yields")                                                                         \
    X(idle_sleeps, C, "carrier idle sleeps")                                                       \
    X(driver_polls, C, "driver epoll calls")                                                       \
    X(timers_fired, C, "timers fired")                                                             \
    X(timers_pending, G, "timers pending")                                                         \
    X(fds_registered, G, "fds registered with epoll")                                              \
    X(runq_total, G, "runnable fibers queued")                                                     \
    X(pool_threads, G, "blocking-pool threads")                                                    \
    X(pool_busy, G, "  running a call")                                                            \
    X(pool_queued, G, "  calls queued")                                                            \
    X(pool_peak, G, "  most threads at once")                                                      \
    X(pool_calls, C, "blocking-pool calls")                                                        \
    X(handoffs, C, "carrier hand-offs")                                                            \
    X(handoffs_in_call, C, "  a call made in place lasted")                                        \
    X(handoffs_computing, C, "  a thread computed")                                                \
    X(handoffs_asleep, C, "  a thread slept where no interposer saw")                              \
    X(handoffs_disk, C, "  an uninterruptible sleep")                                              \
    X(handoffs_unread, C, "  its state could not be read")                                         \
    X(spares_started, G, "spare carriers started")                                                 \
    X(spares_running, G, "  running now")

enum {
#define FZ_VIEW_ENUM(name, kind, words) FZ_V_##name,
    FZ_VIEW_FIELDS(FZ_VIEW_ENUM)
#undef FZ_VIEW_ENUM
        FZ_V_COUNT
};

#define FZ_VIEW_MAX_CARRIERS 1280

struct fz_view_carrier {
    int tid;
    bool spare;
    uint64_t idle_ns; /* time spent asleep since it started */
    uint64_t switches;
    uint64_t runq; /* fibers in its queue now */
};

struct fz_view {
    int pid;
    uint64_t uptime_ns; /* since the runtime started */
    unsigned target;    /* carriers meant to run fibers */
    uint64_t v[FZ_V_COUNT];
    unsigned ncarriers;
    struct fz_view_carrier carriers[FZ_VIEW_MAX_CARRIERS];
};

/* JSON object (one line, newline-terminated); returns the length written
 * or that would have been. */
size_t fz_view_json(const struct fz_view *v, char *buf, size_t len);
/* Parse what fz_view_json wrote; false if it is not that. */
bool fz_view_parse(const char *json, struct fz_view *v);
/* The table.  prev (may be NULL) is an earlier view of the same process:
 * then counters get a per-second column and busy % is over the interval. */
size_t fz_view_table(const struct fz_view *v, const struct fz_view *prev, char *buf, size_t len);

#endif
