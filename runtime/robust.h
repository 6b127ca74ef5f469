/* Robust mutexes held by fibers (runtime/robust_glibc.c). */
#ifndef FZ_ROBUST_H
#define FZ_ROBUST_H

#include <stdbool.h>

/* Mark every robust mutex on the TCB's list FUTEX_OWNER_DIED and wake one
 * kernel waiter each, as the kernel does at an OS thread's exit.
 * shared_only: only process-shared ones, and the list is left as it is
 * (process exit, where the fibers may still run). */
void fz_robust_release(void *tcb, bool shared_only);

#endif
