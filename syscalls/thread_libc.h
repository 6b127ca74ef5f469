/* The thread family's libc-specific pieces (syscalls/thread_glibc.c,
 * syscalls/thread_musl.c): the encoding of pthread_attr_t and how a thread
 * cancels itself.  Everything else in syscalls/thread.c is the same on
 * both libcs. */
#ifndef FZ_THREAD_LIBC_H
#define FZ_THREAD_LIBC_H

#include <pthread.h>
#include <sched.h>
#include "runtime/fiber.h"

/* What a pthread_attr_t asks of a new thread (NULL: the defaults);
 * guard_size (size_t)-1 when the caller did not choose one. */
void fz_read_thread_attr(const pthread_attr_t *attr, struct fz_fiber_attr *a);

/* What pthread_getattr_np reports as the thread's CPU set, where the
 * libc's attributes carry one. */
void fz_attr_set_affinity(pthread_attr_t *attr, const cpu_set_t *cpus);

/* pthread_cancel(pthread_self()) on a fiber: 0, or does not return when an
 * asynchronous cancel acts at once. */
int fz_cancel_self(pthread_t self);

#endif
