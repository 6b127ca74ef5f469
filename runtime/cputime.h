/* Per-fiber CPU time (runtime/cputime.c). */
#ifndef FZ_CPUTIME_H
#define FZ_CPUTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct fz_fiber;
struct fz_carrier;

extern atomic_bool fz_cputime_on;

/* The program asked for a thread CPU clock: account from now on. */
void fz_cputime_enable(struct fz_fiber *self);
/* Scheduler: self stops running on c / c starts running a fiber. */
void fz_cputime_stop(struct fz_carrier *c, struct fz_fiber *self);
void fz_cputime_start(struct fz_carrier *c);
/* f's CPU time in ns (self: up to now). */
uint64_t fz_cputime_of(struct fz_fiber *f, struct fz_fiber *self);

#endif
