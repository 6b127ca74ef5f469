/* Offloading (see offload.h): one prepared call interface per offloaded
 * function, and the pool call that runs it.  How the interface is made and
 * called is the libc side's (offload_glibc.c: libffi; offload_musl.c: by
 * hand); when and where, with which signal and cancellation rules, is here.
 *
 * An interface is prepared once, under its spinlock, and read-only once
 * `ready` is set; callers on any fiber share it.
 */
#include <errno.h>
#include <string.h>
#include "runtime/assert.h"
#include "runtime/monitor.h"
#include "runtime/park.h"
#include "runtime/pool.h"
#include "runtime/sched.h"
#include "syscalls/offload.h"

bool fz_offload_prepare(struct fz_offload *o, enum fz_offload_kind result,
                        const unsigned char *kinds, unsigned n)
{
    if (atomic_load_explicit(&o->ready, memory_order_acquire))
        return true;
    if (!fz_offload_iface_load())
        return false;
    fz_spin_lock(&o->lock);
    if (!atomic_load_explicit(&o->ready, memory_order_relaxed) && n <= FZ_OFFLOAD_MAX_ARGS) {
        o->nargs = (unsigned char)n;
        o->result = (unsigned char)result;
        memcpy(o->kinds, kinds, n);
        if (fz_offload_iface_prepare(o))
            atomic_store_explicit(&o->ready, 1, memory_order_release);
    }
    fz_spin_unlock(&o->lock);
    return atomic_load_explicit(&o->ready, memory_order_relaxed);
}

struct offload_job {
    const struct fz_offload *o;
    void (*fn)(void);
    fz_offload_word *ret;
    void **args;
};

static void run_job(struct fz_pool_call *call)
{
    struct offload_job *job = call->ctx;
    fz_offload_iface_call(job->o, job->fn, job->ret, job->args);
}

struct fz_carrier *fz_offload_inline_begin(int policy)
{
    /* Only calls no signal or cancellation has to interrupt: the others'
     * EINTR paths are the pool's (offload.h). */
    FZ_ASSERT((policy & FZ_OFFLOAD_POLICY) == FZ_OFFLOAD_PLAIN ||
              (policy & FZ_OFFLOAD_POLICY) == FZ_OFFLOAD_CANCEL);
    if ((policy & FZ_OFFLOAD_POLICY) == FZ_OFFLOAD_CANCEL)
        fz_cancel_point(); /* as the pool path does before the call */
    return fz_blocking_enter(fz_self());
}

void fz_offload_inline_end(struct fz_carrier *c)
{
    fz_blocking_exit(c, fz_self());
}

static const struct {
    unsigned flags;
    int intr;
} policy_table[] = {
    [FZ_OFFLOAD_PLAIN] = {0, FZ_INTR_NONE},
    [FZ_OFFLOAD_CANCEL] = {0, FZ_INTR_NONE},
    [FZ_OFFLOAD_INTR] = {FZ_POOL_INTERRUPTIBLE, FZ_INTR_NORESTART | FZ_INTR_NOCANCEL},
    [FZ_OFFLOAD_WAIT] = {FZ_POOL_INTERRUPTIBLE, FZ_INTR_NORESTART | FZ_INTR_CANCEL},
    [FZ_OFFLOAD_SPAWN] = {FZ_POOL_CALLER_MASK, FZ_INTR_NONE},
};

bool fz_offload_call(struct fz_offload *o, void (*fn)(void), fz_offload_word *ret, void **args)
{
    int policy = o->policy & FZ_OFFLOAD_POLICY;
    bool cancel_point = policy == FZ_OFFLOAD_CANCEL || policy == FZ_OFFLOAD_WAIT;
    if (cancel_point)
        fz_cancel_point();
    struct offload_job job = {o, fn, ret, args};
    struct fz_pool_call call = {
        .run = run_job,
        .ctx = &job,
        .flags = policy_table[policy].flags,
        .intr = policy_table[policy].intr,
        .args = args,
    };
    bool made = fz_pool_run(&call);
    /* Cancellation acts only on a call it stopped: one that completed
     * keeps its result (a reaped child must not be lost). */
    if (cancel_point && (!made || (call.kicked && errno == EINTR)))
        fz_cancel_point();
    return made;
}
