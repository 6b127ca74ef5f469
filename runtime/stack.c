/* Fiber stacks (see stack.h for the guard budget and cache rules). */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include "runtime/spinlock.h"
#include "runtime/stack.h"
#include "runtime/sys.h"

#define PAGE 4096u
#define CACHE_MAX 64u
/* Freed default stacks beyond the carriers' caches wait here rather than
 * being unmapped: munmap of a stack another CPU touched costs a TLB
 * shoot-down IPI, tens of microseconds on this hypervisor, while a cached
 * stack costs only the few pages it touched. */
#define SHARED_MAX 4096u

static size_t default_size, default_guard;
static fz_spinlock shared_lock;
static struct fz_stack_cache shared;
static atomic_long guarded_stacks;
static long guard_budget;
/* Linux 6.13+ installs guard pages as page-table markers (no VMA split), so
 * every stack can have one whatever max_map_count says. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
static bool guard_markers;

/* Guards are affordable while each one's two mappings leave room for the
 * program's own mappings. */
static long read_guard_budget(void)
{
    long max_maps = 65530;
    long fd = fz_sys3(SYS_open, "/proc/sys/vm/max_map_count", 0 /*O_RDONLY*/, 0);
    if (fd >= 0) {
        char buf[32];
        long n = fz_sys3(SYS_read, fd, buf, sizeof buf - 1);
        fz_sys1(SYS_close, fd);
        if (n > 0) {
            long v = 0;
            for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
                v = v * 10 + (buf[i] - '0');
            if (v > 0)
                max_maps = v;
        }
    }
    long budget = (max_maps - 16384) / 2;
    return budget > 1024 ? budget : 1024;
}

static bool kernel_has_guard_markers(void)
{
    long p =
        fz_sys6(SYS_mmap, 0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p < 0 && p > -4096)
        return false;
    bool ok = fz_sys3(SYS_madvise, p, PAGE, MADV_GUARD_INSTALL) == 0;
    fz_sys2(SYS_munmap, p, 2 * PAGE);
    return ok;
}

void fz_stack_setup(size_t size, size_t guard)
{
    default_size = fz_round_up(size, PAGE);
    default_guard = fz_round_up(guard, PAGE);
    guard_markers = kernel_has_guard_markers();
    /* markers cost no mapping: the budget (a /proc read, 10-15 us of
     * start-up) only matters without them */
    if (!guard_markers)
        guard_budget = read_guard_budget();
}

/* A guard page: a page-table marker where the kernel has them, else a
 * PROT_NONE mapping counted against the budget. */
static bool install_guard(long p, size_t guard)
{
    if (guard_markers)
        return fz_sys3(SYS_madvise, p, (long)guard, MADV_GUARD_INSTALL) == 0;
    return fz_sys3(SYS_mprotect, p, (long)guard, PROT_NONE) == 0;
}

size_t fz_stack_default_size(void)
{
    return default_size;
}

size_t fz_stack_default_guard(void)
{
    return default_guard;
}

static int map_stack(size_t size, size_t guard, struct fz_stack *out)
{
    if (guard && !guard_markers && atomic_fetch_add(&guarded_stacks, 1) >= guard_budget) {
        atomic_fetch_sub(&guarded_stacks, 1);
        guard = 0;
    }
    long p = fz_sys6(SYS_mmap, 0, (long)(size + guard), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p < 0 && p > -4096) {
        if (guard && !guard_markers)
            atomic_fetch_sub(&guarded_stacks, 1);
        return EAGAIN;
    }
    if (guard && !install_guard(p, guard)) {
        fz_sys2(SYS_munmap, p, size + guard);
        if (!guard_markers)
            atomic_fetch_sub(&guarded_stacks, 1);
        return EAGAIN;
    }
    out->base = (char *)p + guard;
    out->size = size;
    out->guard = guard;
    out->user = false;
    return 0;
}

static void unmap_stack(struct fz_stack *s)
{
    fz_sys2(SYS_munmap, (char *)s->base - s->guard, s->size + s->guard);
    if (s->guard && !guard_markers)
        atomic_fetch_sub(&guarded_stacks, 1);
}

/* A cached stack keeps its descriptor just below its top link word. */
static bool cache_pop(struct fz_stack_cache *cache, struct fz_stack *out)
{
    void **top = cache->head;
    if (!top)
        return false;
    cache->head = *top;
    cache->count--;
    *out = *(struct fz_stack *)((char *)top - sizeof(struct fz_stack));
    return true;
}

static bool cache_push(struct fz_stack_cache *cache, struct fz_stack *s, unsigned max)
{
    if (cache->count >= max)
        return false;
    void **top = (void **)((char *)fz_stack_top(s) - sizeof(void *));
    *(struct fz_stack *)((char *)top - sizeof(struct fz_stack)) = *s;
    *top = cache->head;
    cache->head = top;
    cache->count++;
    return true;
}

int fz_stack_alloc(struct fz_stack_cache *cache, size_t size, size_t guard, struct fz_stack *out)
{
    size = fz_round_up(size, PAGE);
    guard = fz_round_up(guard, PAGE);
    if (size == default_size && guard == default_guard) {
        if (cache && cache_pop(cache, out))
            return 0;
        fz_spin_lock(&shared_lock);
        bool got = cache_pop(&shared, out);
        fz_spin_unlock(&shared_lock);
        if (got)
            return 0;
    }
    return map_stack(size, guard, out);
}

void fz_stack_release(struct fz_stack_cache *cache, struct fz_stack *s)
{
    if (s->user || !s->base)
        return;
    bool cacheable = s->size == default_size && (s->guard == default_guard || s->guard == 0);
    if (cacheable) {
        if (cache && cache_push(cache, s, CACHE_MAX))
            return;
        fz_spin_lock(&shared_lock);
        bool kept = cache_push(&shared, s, SHARED_MAX);
        fz_spin_unlock(&shared_lock);
        if (kept)
            return;
    }
    unmap_stack(s);
}

void fz_stack_wipe_on_fork(const struct fz_stack *s)
{
    /* with its guard, so the mapping stays one */
    fz_sys3(SYS_madvise, (char *)s->base - s->guard, s->guard + s->size, MADV_WIPEONFORK);
}

void fz_stack_after_fork(void)
{
    shared_lock = (fz_spinlock){0}; /* the cached stacks are the child's too */
}
