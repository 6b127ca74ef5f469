/* Summing and printing the per-carrier counters (see stats.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "runtime/driver.h"
#include "runtime/pool.h"
#include "runtime/reactor.h"
#include "runtime/sched.h"
#include "runtime/det.h"
#include "runtime/stats.h"
#include "runtime/statsview.h"
#include "runtime/sys.h"

static uint64_t started_ns;

void fz_stats_started(void)
{
    started_ns = fz_now_ns();
}

static struct fz_stats sum_carriers(void)
{
    struct fz_stats sum = {0};
    /* every slot, not just the carriers running now: those a shrink back
     * to one OS thread ended keep their counts (sched.c, fz_sched_shrink);
     * slots never used are zero (a fork child has none at all) */
    unsigned slots = fz_rt.carriers ? fz_rt.capacity : 0;
    for (unsigned i = 0; i < slots; i++) {
        const struct fz_stats *s = &fz_rt.carriers[i].stats;
#define FZ_STATS_ADD(name) sum.name += s->name;
        FZ_STATS_FIELDS(FZ_STATS_ADD)
#undef FZ_STATS_ADD
    }
    return sum;
}

void fz_stats_view(struct fz_view *v)
{
    struct fz_stats sum = sum_carriers();
    unsigned n = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
    v->pid = (int)fz_sys0(SYS_getpid);
    v->uptime_ns = fz_now_ns() - started_ns;
    v->target = fz_rt.target;
    uint64_t *x = v->v;
    x[FZ_V_fibers_live] = atomic_load(&fz_rt.live_fibers);
    x[FZ_V_fibers_created] = sum.fibers_created;
    x[FZ_V_fibers_exited] = sum.fibers_exited;
    x[FZ_V_switches] = sum.switches;
    x[FZ_V_steals] = sum.steals;
    x[FZ_V_inject_pops] = sum.inject_pops;
    x[FZ_V_tp_writes] = sum.tp_writes;
    x[FZ_V_parks] = sum.parks;
    x[FZ_V_parks_fd] = sum.parks_fd;
    x[FZ_V_parks_addr] = sum.parks_addr;
    x[FZ_V_parks_sleep] = sum.parks_sleep;
    x[FZ_V_wakes] = sum.wakes;
    x[FZ_V_yields] = sum.yields;
    x[FZ_V_idle_sleeps] = sum.idle_sleeps;
    x[FZ_V_driver_polls] = sum.driver_polls;
    x[FZ_V_timers_fired] = sum.timers_fired;
    x[FZ_V_timers_pending] = fz_driver_timers_pending();
    x[FZ_V_fds_registered] = fz_reactor_registered();
    struct fz_pool_snapshot p;
    fz_pool_snapshot(&p);
    x[FZ_V_pool_threads] = p.threads;
    x[FZ_V_pool_busy] = p.busy;
    x[FZ_V_pool_queued] = p.queued;
    x[FZ_V_pool_peak] = p.peak;
    x[FZ_V_pool_calls] = p.calls;
    x[FZ_V_handoffs] = atomic_load(&fz_rt.handoffs);
    x[FZ_V_handoffs_in_call] = atomic_load(&fz_rt.handoffs_by[FZ_STUCK_IN_CALL]);
    x[FZ_V_handoffs_computing] = atomic_load(&fz_rt.handoffs_by[FZ_STUCK_COMPUTING]);
    x[FZ_V_handoffs_asleep] = atomic_load(&fz_rt.handoffs_by[FZ_STUCK_ASLEEP]);
    x[FZ_V_handoffs_disk] = atomic_load(&fz_rt.handoffs_by[FZ_STUCK_DISK]);
    x[FZ_V_handoffs_unread] = atomic_load(&fz_rt.handoffs_by[FZ_STUCK_UNREAD]);
    x[FZ_V_spares_started] = n > fz_rt.target ? n - fz_rt.target : 0;
    x[FZ_V_spares_running] = atomic_load(&fz_rt.spares_running);
    uint64_t queued = atomic_load(&fz_rt.inject.len);
    v->ncarriers = n < FZ_VIEW_MAX_CARRIERS ? n : FZ_VIEW_MAX_CARRIERS;
    /* cppcheck takes the atomic load of ncarriers for 0 */
    // cppcheck-suppress knownConditionTrueFalse
    for (unsigned i = 0; i < v->ncarriers; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        struct fz_view_carrier *vc = &v->carriers[i];
        vc->tid = c->tid;
        vc->spare = c->spare;
        vc->idle_ns = c->stats.idle_ns;
        vc->switches = c->stats.switches;
        vc->runq = fz_runq_len(&c->runq) + (atomic_load(&c->lifo) != NULL);
        queued += vc->runq;
    }
    x[FZ_V_runq_total] = queued;
}

void fz_stats_print(void)
{
    struct fz_view *v = calloc(1, sizeof *v);
    size_t cap = 16384;
    char *buf = malloc(cap);
    if (!v || !buf) {
        free(v);
        free(buf);
        return;
    }
    fz_stats_view(v);
    size_t n = fz_view_table(v, NULL, buf, cap);
    if (n >= cap)
        n = cap - 1;
    /* the old one-line form, which scripts (and tests) grep */
    struct fz_stats sum = sum_carriers();
    int k = snprintf(buf + n, cap - n,
                     "fiberize stats: carriers=%u spares_started=%u handoffs=%lu live_fibers=%u",
                     fz_rt.target, atomic_load(&fz_rt.ncarriers) - fz_rt.target,
                     atomic_load(&fz_rt.handoffs), atomic_load(&fz_rt.live_fibers));
    if (k > 0)
        n += (size_t)k;
#define FZ_STATS_PRINT(name)                                                                       \
    if (n < cap)                                                                                   \
        n += (size_t)snprintf(buf + n, cap - n, " " #name "=%llu", (unsigned long long)sum.name);
    FZ_STATS_FIELDS(FZ_STATS_PRINT)
#undef FZ_STATS_PRINT
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, " pool_calls=%llu pool_threads=%llu pool_peak=%llu",
                              (unsigned long long)v->v[FZ_V_pool_calls],
                              (unsigned long long)v->v[FZ_V_pool_threads],
                              (unsigned long long)v->v[FZ_V_pool_peak]);
    if (fz_det_on && n < cap)
        n += fz_det_describe(buf + n, cap - n);
    if (n >= cap - 1)
        n = cap - 2;
    buf[n++] = '\n';
    size_t done = 0;
    while (done < n) { /* not our own write interposer */
        long w = fz_sys3(SYS_write, 2, buf + done, n - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    free(buf);
    free(v);
}
