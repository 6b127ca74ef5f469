/* musl's side of syscalls/schedpolicy.h: its pthread_getschedparam asks
 * the kernel each time, keeping nothing in the thread. */
#include "syscalls/schedpolicy.h"

int fz_sched_pthread_get(struct fz_fiber *f, int *policy, int *priority)
{
    return fz_sched_get(f, policy, priority);
}

void fz_sched_pthread_set(struct fz_fiber *f, int policy, int priority, bool only_priority)
{
    (void)f, (void)policy, (void)priority, (void)only_priority;
}
