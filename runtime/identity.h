/* Thread ids of fibers: what gettid() says, and the way back from a tid to
 * the fiber it names (runtime/identity.c). */
#ifndef FZ_IDENTITY_H
#define FZ_IDENTITY_H

#include <stdbool.h>
#include <sys/types.h>

struct fz_fiber;

/* f (its TCB made) gets its thread id and becomes findable by it: the main
 * fiber the process id, any other the unique fake tid glibc keeps in its
 * TCB (runtime/tls_glibc.c), which the kernel knows as no thread. */
void fz_ident_register(struct fz_fiber *f);
/* The same with a given tid (the fork child's only fiber: its pid). */
void fz_ident_register_as(struct fz_fiber *f, pid_t tid);
/* f ends: its tid names nothing any more. */
void fz_ident_unregister(struct fz_fiber *f);
/* The live fiber whose tid is `tid`, or NULL.  Lock-free and safe in a
 * signal handler (fiber structs are never freed, only recycled). */
struct fz_fiber *fz_ident_lookup(pid_t tid);
/* Some live fiber for which accept(f, arg) holds, or NULL.  Lock-free (a
 * signal handler may ask); a fiber born or gone meanwhile may be missed. */
struct fz_fiber *fz_ident_any(bool (*accept)(struct fz_fiber *, void *), void *arg);
/* visit(f, arg) for every live fiber, under fz_ident_any's terms. */
void fz_ident_each(void (*visit)(struct fz_fiber *, void *), void *arg);
/* fork child: only `self` remains; it becomes the main thread (tid = pid). */
void fz_ident_after_fork(struct fz_fiber *self, pid_t pid);

#endif
