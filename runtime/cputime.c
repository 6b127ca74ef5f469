/* Per-fiber CPU time.
 *
 * A fiber's CPU time is the carrier CPU time (CLOCK_THREAD_CPUTIME_ID of
 * the carrier's OS thread) consumed between its switch-ins and switch-outs:
 * each switch reads the carrier's clock once, charges the fiber that
 * leaves and starts the next one from there.  That read is a system call
 * (0.43 us on the development machine, several times a fiber switch), so
 * accounting starts only when the program first asks for a thread CPU
 * clock (clock_gettime(CLOCK_THREAD_CPUTIME_ID), pthread_getcpuclockid,
 * getrusage(RUSAGE_THREAD)): readings are exact differences from then on,
 * and a fiber's first reading counts from that moment (not from its
 * start).  A carrier's mark is valid only after its first switch since
 * accounting began, or once its fiber read its own clock: a fiber running
 * elsewhere at that moment is charged from then on.
 *
 * `cpu_mark`/`cpu_valid` belong to the carrier's own thread; `cpu_ns` is
 * written by the carrier running the fiber (at its switch-out), read by
 * anyone.  Raw system calls: the switch path is TLS-free.
 */
#include <time.h>
#include "runtime/cputime.h"
#include "runtime/fiber.h"
#include "runtime/sys.h"

atomic_bool fz_cputime_on;

uint64_t fz_cpu_clock_ns(clockid_t clk)
{
    struct timespec ts;
    if (fz_sys2(SYS_clock_gettime, clk, &ts) != 0)
        return 0;
    return fz_ts_to_ns(&ts);
}

static uint64_t carrier_cpu_ns(void)
{
    return fz_cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

void fz_cputime_enable(struct fz_fiber *self)
{
    if (atomic_load_explicit(&fz_cputime_on, memory_order_relaxed))
        return;
    if (self) {
        struct fz_carrier *c = self->carrier;
        c->cpu_mark = carrier_cpu_ns();
        c->cpu_valid = true;
    }
    atomic_store(&fz_cputime_on, true);
}

void fz_cputime_stop(struct fz_carrier *c, struct fz_fiber *self)
{
    uint64_t now = carrier_cpu_ns();
    if (c->cpu_valid && now >= c->cpu_mark)
        __atomic_store_n(&self->cpu_ns, self->cpu_ns + (now - c->cpu_mark), __ATOMIC_RELAXED);
    c->cpu_mark = now;
    c->cpu_valid = true;
}

void fz_cputime_start(struct fz_carrier *c)
{
    c->cpu_mark = carrier_cpu_ns();
    c->cpu_valid = true;
}

uint64_t fz_cputime_of(struct fz_fiber *f, struct fz_fiber *self)
{
    uint64_t ns = __atomic_load_n(&f->cpu_ns, __ATOMIC_RELAXED);
    if (f == self) { /* its own carrier: the mark is ours to set */
        struct fz_carrier *c = self->carrier;
        uint64_t now = carrier_cpu_ns();
        if (!c->cpu_valid) {
            c->cpu_mark = now;
            c->cpu_valid = true;
        } else if (now >= c->cpu_mark) {
            ns += now - c->cpu_mark;
        }
    }
    return ns;
}
