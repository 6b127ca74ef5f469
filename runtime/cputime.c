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
 *
 * Another thread's clock read while its fiber runs adds the slice so far,
 * from the carrier's clock and mark, taken without a lock: the reading
 * stands only if the fiber's charge and the mark did not move meanwhile.
 * The switch charges the fiber before the carrier moves on to the next
 * one, so such a reading can count a few microseconds of the switch twice;
 * `cpu_reported` keeps every reading at least the last one (natively a
 * thread's clock never goes backwards), and the overlap is gone at the
 * fiber's next charge.
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
        __atomic_store_n(&c->cpu_mark, carrier_cpu_ns(), __ATOMIC_RELEASE);
        __atomic_store_n(&c->cpu_valid, true, __ATOMIC_RELEASE);
    }
    atomic_store(&fz_cputime_on, true);
}

void fz_cputime_stop(struct fz_carrier *c, struct fz_fiber *self)
{
    uint64_t now = carrier_cpu_ns();
    if (c->cpu_valid && now >= c->cpu_mark)
        __atomic_store_n(&self->cpu_ns, self->cpu_ns + (now - c->cpu_mark), __ATOMIC_RELEASE);
    /* after the charge: a reader that sees this mark sees the charge */
    __atomic_store_n(&c->cpu_mark, now, __ATOMIC_RELEASE);
    __atomic_store_n(&c->cpu_valid, true, __ATOMIC_RELEASE);
}

void fz_cputime_start(struct fz_carrier *c)
{
    __atomic_store_n(&c->cpu_mark, carrier_cpu_ns(), __ATOMIC_RELEASE);
    __atomic_store_n(&c->cpu_valid, true, __ATOMIC_RELEASE);
}

/* f's charge plus its running slice if it runs on a carrier now. */
static uint64_t other_fiber_ns(struct fz_fiber *f)
{
    uint64_t ns = __atomic_load_n(&f->cpu_ns, __ATOMIC_ACQUIRE);
    struct fz_carrier *c = __atomic_load_n(&f->carrier, __ATOMIC_ACQUIRE);
    if (!c || __atomic_load_n(&c->current, __ATOMIC_ACQUIRE) != f ||
        !__atomic_load_n(&c->cpu_valid, __ATOMIC_ACQUIRE))
        return ns;
    uint64_t mark = __atomic_load_n(&c->cpu_mark, __ATOMIC_ACQUIRE);
    uint64_t now = fz_cpu_clock_ns(fz_kernel_thread_clock(c->tid));
    bool moved = __atomic_load_n(&c->cpu_mark, __ATOMIC_ACQUIRE) != mark;
    uint64_t ns_after = __atomic_load_n(&f->cpu_ns, __ATOMIC_ACQUIRE);
    if (moved || ns_after != ns || __atomic_load_n(&c->current, __ATOMIC_ACQUIRE) != f ||
        now < mark)
        return ns_after; /* it switched meanwhile: charged up to then */
    return ns + (now - mark);
}

void fz_cputime_restart(struct fz_fiber *f, uint64_t ns)
{
    f->cpu_ns = ns;
    f->cpu_reported = ns;
}

/* Never less than a reading before (see the top). */
static uint64_t not_backwards(struct fz_fiber *f, uint64_t ns)
{
    uint64_t seen = __atomic_load_n(&f->cpu_reported, __ATOMIC_RELAXED);
    while (ns > seen && !__atomic_compare_exchange_n(&f->cpu_reported, &seen, ns, true,
                                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return ns > seen ? ns : seen;
}

uint64_t fz_cputime_of(struct fz_fiber *f, struct fz_fiber *self)
{
    if (f != self)
        return not_backwards(f, other_fiber_ns(f));
    /* its own carrier: the mark is ours to set */
    uint64_t ns = __atomic_load_n(&f->cpu_ns, __ATOMIC_RELAXED);
    struct fz_carrier *c = self->carrier;
    uint64_t now = carrier_cpu_ns();
    if (!c->cpu_valid) {
        __atomic_store_n(&c->cpu_mark, now, __ATOMIC_RELEASE);
        __atomic_store_n(&c->cpu_valid, true, __ATOMIC_RELEASE);
    } else if (now >= c->cpu_mark) {
        ns += now - c->cpu_mark;
    }
    return not_backwards(f, ns);
}
