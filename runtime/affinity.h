/* Per-fiber CPU affinity (runtime/affinity.c). */
#ifndef FZ_AFFINITY_H
#define FZ_AFFINITY_H

#include <sched.h>
#include <stddef.h>

struct fz_fiber;
struct fz_carrier;

/* f's CPU mask becomes `set` (size bytes): 0 or EINVAL (no CPU of it is
 * one the process may use), ENOMEM.  Applied to whichever carrier runs f,
 * while it runs f: at once if f is the caller. */
int fz_affinity_set(struct fz_fiber *f, struct fz_fiber *self, size_t size, const cpu_set_t *set);
/* f's mask into set (size bytes, zero-filled beyond it). */
int fz_affinity_get(struct fz_fiber *f, size_t size, cpu_set_t *set);
/* A new fiber starts with its creator's mask, as a new thread does. */
int fz_affinity_inherit(struct fz_fiber *child, struct fz_fiber *creator);
/* Switch-in (sched.c): c takes f's mask if it has another loaded; idle:
 * c goes back to the process's mask. */
void fz_affinity_switch_in(struct fz_carrier *c, struct fz_fiber *f);
void fz_affinity_idle(struct fz_carrier *c);
/* How many CPUs the process may use (its mask at the first look). */
unsigned fz_affinity_process_cpu_count(void);

#endif
