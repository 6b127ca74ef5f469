/* A fiber's scheduling policy and priority as the program sees them
 * (syscalls/schedpolicy.c). */
#ifndef FZ_SCHEDPOLICY_H
#define FZ_SCHEDPOLICY_H
#include <stdbool.h>
#include "runtime/fiber.h"

/* f's policy (with SCHED_RESET_ON_FORK if set) and priority: 0 or an
 * errno value. */
int fz_sched_get(struct fz_fiber *f, int *policy, int *priority);
/* Give f that policy and priority (only_priority: keep its policy), as
 * pthread_setschedparam would: 0 or an errno value. */
int fz_sched_set(struct fz_fiber *f, int policy, int priority, bool only_priority);

/* What pthread_getschedparam answers for f (libc-specific: glibc keeps a
 * copy per thread that only the pthread calls update, musl asks the
 * kernel), and what a successful pthread_setschedparam (only_priority:
 * pthread_setschedprio) records there. */
int fz_sched_pthread_get(struct fz_fiber *f, int *policy, int *priority);
void fz_sched_pthread_set(struct fz_fiber *f, int policy, int priority, bool only_priority);
#endif
