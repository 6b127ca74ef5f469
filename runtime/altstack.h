/* Per-fiber sigaltstack (runtime/altstack.c). */
#ifndef FZ_ALTSTACK_H
#define FZ_ALTSTACK_H

#include <signal.h>
#include <stdbool.h>

struct fz_fiber;
struct fz_carrier;

/* Switch-in: load f's alternate stack on c if c has another one. */
void fz_altstack_switch_in(struct fz_carrier *c, struct fz_fiber *f);
/* Switch-out: the fiber leaving c may run on another carrier next, and
 * disable or unmap its alternate stack there; c drops it first.  If the
 * fiber leaves from a handler on it (the kernel refuses to change an
 * alternate stack in use), c keeps it and blocks every signal until the
 * next switch-in or its idle loop replaces it (altstack.c). */
void fz_altstack_switch_out(struct fz_carrier *c);
/* c's idle context runs no fiber: it keeps no fiber's alternate stack. */
void fz_altstack_idle(struct fz_carrier *c);
/* sigaltstack(2) setting ss (not NULL) for the running fiber f, on its
 * carrier, and a record of what the kernel then has, for f and for the
 * carrier.  The caller blocks every signal around it (altstack.c says
 * why); a query needs neither this nor the mask.  0 or -errno. */
int fz_altstack_set(struct fz_fiber *f, const stack_t *ss, stack_t *old);
/* Does sp lie on f's alternate stack (a handler of f running there)? */
bool fz_altstack_contains(struct fz_fiber *f, const void *sp);
/* A new fiber starts with none, as a new thread does; the main fiber and a
 * fork child's keep what their OS thread had. */
void fz_altstack_init(struct fz_fiber *f, bool inherit);

#endif
