/* Fiber stacks: mmap'd, reserved lazily (MAP_NORESERVE: only touched pages
 * cost memory), with a PROT_NONE guard page below so an overflow dies with
 * SIGSEGV as natively.
 *
 * On Linux 6.13+ the guard is a page-table marker (MADV_GUARD_INSTALL): no
 * extra mapping, so every stack has one and 100,000 fibers fit.  On older
 * kernels a PROT_NONE guard splits the mapping, and vm.max_map_count (65530
 * here) caps mappings per process, so guards are given while the number of
 * guarded stacks stays below a budget derived from max_map_count; stacks
 * beyond it get no guard page (documented in the README).
 *
 * Each carrier keeps a small cache of default-sized stacks; the cache is
 * touched only by its carrier.  Uses raw syscalls only (stacks are released
 * on the scheduler path).
 */
#ifndef FZ_STACK_H
#define FZ_STACK_H

#include <stdbool.h>
#include <stddef.h>

struct fz_stack {
    void *base;   /* lowest usable address */
    size_t size;  /* usable bytes above base */
    size_t guard; /* guard bytes below base (0 if none) */
    bool user;    /* caller-provided (pthread_attr_setstack): never freed by us */
};

struct fz_stack_cache {
    void *head; /* free stacks linked through their top word */
    unsigned count;
};

void fz_stack_setup(size_t default_size, size_t default_guard);
size_t fz_stack_default_size(void);
size_t fz_stack_default_guard(void);
/* Returns 0 or an errno value (EAGAIN when memory or mappings run out). */
int fz_stack_alloc(struct fz_stack_cache *cache, size_t size, size_t guard, struct fz_stack *out);
void fz_stack_release(struct fz_stack_cache *cache, struct fz_stack *s);
/* A stack only its own thread uses and a fork child never runs on: the
 * child gets zero pages for it, so the parent's writes after a fork copy
 * nothing.  Without MADV_WIPEONFORK (kernels before 4.14) it is copied as
 * any memory. */
void fz_stack_wipe_on_fork(const struct fz_stack *s);
/* fork child: the shared cache's lock may have been held by another thread. */
void fz_stack_after_fork(void);
static inline void *fz_stack_top(const struct fz_stack *s)
{
    return (char *)s->base + s->size;
}

#endif
