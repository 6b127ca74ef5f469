/* Summing and printing the per-carrier counters (see stats.h). */
#include <stdio.h>
#include <unistd.h>
#include "runtime/pool.h"
#include "runtime/sched.h"
#include "runtime/stats.h"
#include "runtime/sys.h"

void fz_stats_print(void)
{
    struct fz_stats sum = {0};
    unsigned ncarriers = atomic_load(&fz_rt.ncarriers);
    for (unsigned i = 0; i < ncarriers; i++) {
        const struct fz_stats *s = &fz_rt.carriers[i].stats;
#define FZ_STATS_ADD(name) sum.name += s->name;
        FZ_STATS_FIELDS(FZ_STATS_ADD)
#undef FZ_STATS_ADD
    }
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "fiberize stats: carriers=%u spares_started=%u handoffs=%lu live_fibers=%u",
                     fz_rt.target, atomic_load(&fz_rt.ncarriers) - fz_rt.target,
                     atomic_load(&fz_rt.handoffs), atomic_load(&fz_rt.live_fibers));
#define FZ_STATS_PRINT(name)                                                                       \
    if (n < (int)sizeof buf)                                                                       \
        n += snprintf(buf + n, sizeof buf - n, " " #name "=%llu", (unsigned long long)sum.name);
    FZ_STATS_FIELDS(FZ_STATS_PRINT)
#undef FZ_STATS_PRINT
    unsigned long calls;
    unsigned threads, peak;
    fz_pool_stats(&calls, &threads, &peak);
    if (n < (int)sizeof buf)
        n += snprintf(buf + n, sizeof buf - n, " pool_calls=%lu pool_threads=%u pool_peak=%u",
                      calls, threads, peak);
    if (n >= (int)sizeof buf - 1)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    fz_sys3(SYS_write, 2, (long)buf, n); /* not our own write interposer */
}
