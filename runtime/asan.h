/* AddressSanitizer and fibers (builds with -DFZ_ASAN; no code otherwise).
 *
 * ASan keeps one AsanThread per OS thread, found through a pthread key --
 * that is, through the TCB the thread pointer names.  Fibers have TCBs of
 * their own, so each time a TCB is loaded on a carrier its slot for that
 * key is pointed at the carrier's AsanThread, and the idle context always
 * runs on the carrier's own TCB: code on a carrier then always finds that
 * carrier's AsanThread.  Every switch between stacks is announced
 * (__sanitizer_start_switch_fiber before, _finish_ after) so ASan knows
 * which stack is live, for its reports and for no-return unwinding.
 */
#ifndef FZ_ASAN_H
#define FZ_ASAN_H

#include <stdbool.h>
#include <stddef.h>
#include "runtime/stack.h"

struct fz_carrier;

#ifdef FZ_ASAN
#define FZ_ASAN_ON 1
/* On c's OS thread: remember the AsanThread of the TCB loaded now, and
 * the stack its idle context runs on (NULL: this OS thread's own). */
void fz_asan_carrier_adopt(struct fz_carrier *c, const struct fz_stack *idle);
/* A TCB was just loaded on c. */
void fz_asan_tcb_loaded(struct fz_carrier *c);
/* True for ASan's pthread key: a fiber's exit must not run its destructor
 * (the AsanThread in the slot is the carrier's, not the fiber's).  The slot
 * stays set meanwhile, since a destructor may park and switch stacks. */
bool fz_asan_owns_key(unsigned key);
/* The running fiber leaves its stack for good: frames still on it keep
 * their redzones poisoned, which the stack's next fiber must not inherit. */
void fz_asan_stack_done(const struct fz_stack *stack);
/* The fiber is about to be unwound (pthread_exit, cancellation): glibc's
 * unwinder skips the frames' epilogues that would unpoison their redzones,
 * so unpoison what is above the current frame now. */
void fz_asan_no_return(void);
/* About to switch to the stack `to`; *save keeps this context's fake
 * stack (save NULL: this context never comes back). */
void fz_asan_leave(void **save, const struct fz_stack *to);
/* Back on a stack after a switch; save as given to fz_asan_leave. */
void fz_asan_arrive(void *save);
#else
#define FZ_ASAN_ON 0
static inline void fz_asan_carrier_adopt(struct fz_carrier *c, const struct fz_stack *idle)
{
    (void)c, (void)idle;
}
static inline void fz_asan_tcb_loaded(struct fz_carrier *c)
{
    (void)c;
}
static inline bool fz_asan_owns_key(unsigned key)
{
    (void)key;
    return false;
}
static inline void fz_asan_stack_done(const struct fz_stack *stack)
{
    (void)stack;
}
static inline void fz_asan_no_return(void) {}
static inline void fz_asan_leave(void **save, const struct fz_stack *to)
{
    (void)save, (void)to;
}
static inline void fz_asan_arrive(void *save)
{
    (void)save;
}
#endif

#endif
