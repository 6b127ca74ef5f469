/* Per-fiber CPU affinity.
 *
 * Natively sched_setaffinity(0, ...) pins the calling thread; done on a
 * carrier it pinned every fiber that ran there afterwards, for good.  A
 * fiber's mask lives in the fiber (NULL: the process's mask, what every
 * carrier starts with); a carrier loads the mask of the fiber it switches
 * to only when it differs from what it has (`affinity_gen`, 0 for the
 * process's mask), and goes back to the process's mask when it goes idle.
 * So a pinned fiber runs only on its CPUs -- its carrier moves there while
 * it runs -- and costs a system call at each switch to or from it; fibers
 * left alone cost nothing.
 *
 * A fiber's mask is written under its lock by whoever sets it (generation
 * bumped last); the switch-in reads it under the same lock.  Raw system
 * calls: the switch-in path is TLS-free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/affinity.h"
#include "runtime/fiber.h"
#include "runtime/sys.h"

static cpu_set_t process_mask;
static atomic_int have_process_mask;
static atomic_uint next_gen;

/* The mask the process started with: every carrier's until a pinned fiber
 * ran on it.  Taken on first use, before any carrier was pinned. */
static const cpu_set_t *process_cpus(void)
{
    if (!atomic_load_explicit(&have_process_mask, memory_order_acquire)) {
        cpu_set_t m;
        memset(&m, 0, sizeof m);
        if (fz_sys3(SYS_sched_getaffinity, 0, sizeof m, &m) < 0)
            memset(&m, 0xff, sizeof m);
        int expected = 0;
        if (atomic_compare_exchange_strong(&have_process_mask, &expected, 2)) {
            process_mask = m;
            atomic_store_explicit(&have_process_mask, 1, memory_order_release);
        }
        while (atomic_load_explicit(&have_process_mask, memory_order_acquire) != 1)
            fz_cpu_relax();
    }
    return &process_mask;
}

unsigned fz_affinity_process_cpu_count(void)
{
    return (unsigned)CPU_COUNT(process_cpus());
}

static void load(struct fz_carrier *c, const cpu_set_t *m, unsigned gen)
{
    if (fz_sys3(SYS_sched_setaffinity, 0, sizeof *m, m) == 0)
        c->affinity_gen = gen;
}

int fz_affinity_set(struct fz_fiber *f, struct fz_fiber *self, size_t size, const cpu_set_t *set)
{
    cpu_set_t want, usable;
    memset(&want, 0, sizeof want);
    memcpy(&want, set, size < sizeof want ? size : sizeof want);
    CPU_AND(&usable, &want, process_cpus());
    if (CPU_COUNT(&usable) == 0)
        return EINVAL; /* as the kernel says for a mask with no usable CPU */
    cpu_set_t *mask = f->affinity;
    if (!mask && !(mask = malloc(sizeof *mask)))
        return ENOMEM;
    fz_spin_lock(&f->lock);
    f->affinity = mask;
    *mask = usable;
    f->affinity_gen = atomic_fetch_add(&next_gen, 1) + 1;
    fz_spin_unlock(&f->lock);
    if (f == self)
        fz_affinity_switch_in(self->carrier, self);
    return 0;
}

int fz_affinity_get(struct fz_fiber *f, size_t size, cpu_set_t *set)
{
    cpu_set_t m;
    fz_spin_lock(&f->lock);
    m = f->affinity_gen ? *f->affinity : *process_cpus();
    fz_spin_unlock(&f->lock);
    memset(set, 0, size);
    memcpy(set, &m, size < sizeof m ? size : sizeof m);
    return 0;
}

int fz_affinity_inherit(struct fz_fiber *child, struct fz_fiber *creator)
{
    child->affinity_gen = 0;
    if (!creator || !creator->affinity_gen)
        return 0;
    if (!child->affinity && !(child->affinity = malloc(sizeof *child->affinity)))
        return ENOMEM;
    fz_spin_lock(&creator->lock);
    *child->affinity = *creator->affinity;
    child->affinity_gen = creator->affinity_gen;
    fz_spin_unlock(&creator->lock);
    return 0;
}

void fz_affinity_switch_in(struct fz_carrier *c, struct fz_fiber *f)
{
    if (c->affinity_gen == f->affinity_gen)
        return;
    if (!f->affinity_gen) {
        load(c, process_cpus(), 0);
        return;
    }
    cpu_set_t m;
    fz_spin_lock(&f->lock);
    unsigned gen = f->affinity_gen;
    m = *f->affinity;
    fz_spin_unlock(&f->lock);
    load(c, &m, gen);
}

void fz_affinity_idle(struct fz_carrier *c)
{
    if (c->affinity_gen)
        load(c, process_cpus(), 0);
}
