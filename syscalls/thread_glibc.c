/* The glibc side of syscalls/thread_libc.h.
 *
 * pthread_attr_t is read in glibc's own layout: its public getters answer
 * the default for an attribute nobody set, and a fiber must tell the two
 * apart (an unset stack size means the runtime's default, a set one is
 * honoured).  The layout is the same from 2.34 to 2.42 (runtime/
 * libc_glibc.c names what was checked). */
#include <string.h>
#include "syscalls/hook.h"
#include "syscalls/thread_libc.h"

/* glibc 2.36's struct pthread_attr. */
struct glibc_attr {
    int sched_priority, schedpolicy, flags;
    size_t guardsize;
    void *stackaddr; /* top of a caller-provided stack */
    size_t stacksize;
};
#define GLIBC_ATTR_FLAG_DETACHSTATE 0x1
#define GLIBC_ATTR_FLAG_STACKADDR 0x8

void fz_read_thread_attr(const pthread_attr_t *attr, struct fz_fiber_attr *a)
{
    memset(a, 0, sizeof *a);
    a->guard_size = (size_t)-1; /* default */
    if (!attr)
        return;
    const struct glibc_attr *g = (const void *)attr;
    a->detached = g->flags & GLIBC_ATTR_FLAG_DETACHSTATE;
    a->guard_size = g->guardsize;
    a->stack_size = g->stacksize;
    if (g->flags & GLIBC_ATTR_FLAG_STACKADDR) {
        a->user_stack = (char *)g->stackaddr - g->stacksize;
        a->user_stack_size = g->stacksize;
    }
}

void fz_attr_set_affinity(pthread_attr_t *attr, const cpu_set_t *cpus)
{
    pthread_attr_setaffinity_np(attr, sizeof *cpus, cpus);
}

/* glibc records the request in the fiber's own TCB and, for an
 * asynchronous cancel, unwinds at once: its own code is right here. */
int fz_cancel_self(pthread_t self)
{
    return fz_real.pthread_cancel(self);
}
