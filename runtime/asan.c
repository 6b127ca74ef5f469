/* See asan.h.  Written once per carrier at start (adopt), then read by
 * that carrier only. */
#ifdef FZ_ASAN
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include "runtime/asan.h"
#include "runtime/fiber.h"

/* ASan's key: the first key that has a value on a thread ASan knows.  It
 * creates it while it initialises, before any constructor of ours runs. */
static int asan_key = -1;

static int find_asan_key(void)
{
    for (unsigned k = 0; k < 32; k++)
        if (pthread_getspecific((pthread_key_t)k))
            return (int)k;
    return -1;
}

void fz_asan_carrier_adopt(struct fz_carrier *c, const struct fz_stack *idle)
{
    if (asan_key < 0)
        asan_key = find_asan_key();
    if (asan_key >= 0)
        c->asan_thread = pthread_getspecific((pthread_key_t)asan_key);
    if (idle) {
        c->asan_idle = *idle;
        return;
    }
    pthread_attr_t attr;
    if (fz_os_thread_getattr(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &c->asan_idle.base, &c->asan_idle.size);
        pthread_attr_destroy(&attr);
    }
}

void fz_asan_tcb_loaded(struct fz_carrier *c)
{
    if (asan_key >= 0 && pthread_getspecific((pthread_key_t)asan_key) != c->asan_thread)
        pthread_setspecific((pthread_key_t)asan_key, c->asan_thread);
}

bool fz_asan_owns_key(unsigned key)
{
    return asan_key >= 0 && key == (unsigned)asan_key;
}

void fz_asan_stack_done(const struct fz_stack *stack)
{
    char *top = (char *)stack->base + stack->size;
    char *low = (char *)__builtin_frame_address(0) - 4096;
    if (low < (char *)stack->base || low >= top)
        low = stack->base;
    __asan_unpoison_memory_region(low, (size_t)(top - low));
}

void fz_asan_no_return(void)
{
    __asan_handle_no_return();
}

void fz_asan_leave(void **save, const struct fz_stack *to)
{
    __sanitizer_start_switch_fiber(save, to->base, to->size);
}

void fz_asan_arrive(void *save)
{
    __sanitizer_finish_switch_fiber(save, NULL, NULL);
}
#endif
