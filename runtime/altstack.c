/* Per-fiber sigaltstack.
 *
 * The kernel keeps one alternate signal stack per OS thread, but it is a
 * thread's property: Rust's standard library gives each thread one and
 * unmaps it when the thread ends, so a carrier that kept a fiber's stack
 * after the fiber moved on (or ended) would write the next SA_ONSTACK
 * frame into freed memory.  Each fiber records its own (`altstack`); a
 * carrier records what it has loaded (`altstack`) and loads the fiber's at
 * switch-in only when it differs -- fibers without one cost nothing -- and
 * drops any when its idle context runs.  The sigaltstack interposer
 * (syscalls/signal.c) has fz_altstack_set make the system call on the
 * carrier, which has the fiber's loaded, so the kernel does the checks
 * (EPERM while on it, the minimum size) and reports SS_ONSTACK itself.
 *
 * A fiber that leaves from a handler running on its alternate stack (the
 * wrapper's yield after it, or a handler that parks) leaves it loaded: the
 * kernel refuses (EPERM) to change an alternate stack the thread is on.
 * From the switch that saves the fiber, another carrier may resume it --
 * on that stack -- while this one still has the stack loaded, and any
 * SA_ONSTACK signal landing here then (the next fiber's switch-in unblocks
 * its pending doorbell first thing) writes its frame at the top of that
 * stack, over the frames of the handler the fiber is in.  So switch-out
 * blocks every signal when it cannot drop the stack, and what runs next
 * replaces the stack before it loads a mask: the switch-in (sched.c loads
 * the alternate stack before the mask) or the idle loop.
 *
 * Both records are written only by the carrier's own thread (switch-in,
 * idle, the running fiber's interposer).  Raw system calls: the switch-in
 * path is TLS-free.
 */
#include <signal.h>
#include <stddef.h>
#include "runtime/altstack.h"
#include "runtime/fiber.h"
#include "runtime/sigmask.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

static bool armed(const stack_t *s)
{
    return !(s->ss_flags & SS_DISABLE) && s->ss_size != 0;
}

static bool same(const stack_t *a, const stack_t *b)
{
    if (!armed(a) || !armed(b))
        return armed(a) == armed(b);
    return a->ss_sp == b->ss_sp && a->ss_size == b->ss_size &&
           (a->ss_flags & ~SS_ONSTACK) == (b->ss_flags & ~SS_ONSTACK);
}

static void load(struct fz_carrier *c, const stack_t *s)
{
    stack_t want = *s;
    if (!armed(&want))
        want = (stack_t){.ss_flags = SS_DISABLE};
    want.ss_flags &= ~SS_ONSTACK;
    if (fz_sys2(SYS_sigaltstack, &want, NULL) == 0)
        c->altstack = want;
}

void fz_altstack_switch_in(struct fz_carrier *c, struct fz_fiber *f)
{
    if (!same(&c->altstack, &f->altstack))
        load(c, &f->altstack);
}

void fz_altstack_switch_out(struct fz_carrier *c)
{
    fz_altstack_idle(c);
    if (armed(&c->altstack))                  /* refused: the fiber leaves from a handler on it */
        fz_sigmask_load(c, ~FZ_LIBC_SIGNALS); /* glibc's handlers are not SA_ONSTACK */
}

void fz_altstack_idle(struct fz_carrier *c)
{
    if (armed(&c->altstack))
        load(c, &(stack_t){.ss_flags = SS_DISABLE});
}

/* The alternate stack the kernel has for this OS thread, as the records
 * keep one (SS_ONSTACK dropped, none as SS_DISABLE); false if unreadable. */
static bool read_loaded(stack_t *out)
{
    stack_t now;
    if (fz_sys2(SYS_sigaltstack, NULL, &now) != 0)
        return false;
    now.ss_flags &= ~SS_ONSTACK;
    *out = armed(&now) ? now : (stack_t){.ss_flags = SS_DISABLE};
    return true;
}

/* What the kernel has loaded now, recorded for f and for its carrier. */
static void note(struct fz_fiber *f)
{
    stack_t now;
    if (read_loaded(&now))
        f->altstack = f->carrier->altstack = now;
}

/* The caller blocks signals from before the kernel takes the new stack
 * until both records say so.  One landing in between would run its
 * handler on a stack that neither record knows: the handler is not seen as
 * on f's alternate stack, and if f leaves from it, switch-out neither
 * drops that stack nor blocks signals -- the next SA_ONSTACK frame on this
 * carrier is written over f's saved frames (tests/programs/sig_altstack
 * hung about 1 run in 20 that way). */
int fz_altstack_set(struct fz_fiber *f, const stack_t *ss, stack_t *old)
{
    long r = fz_sys2(SYS_sigaltstack, ss, old);
    if (r == 0)
        note(f);
    return (int)r;
}

bool fz_altstack_contains(struct fz_fiber *f, const void *sp)
{
    const stack_t *s = &f->altstack;
    return armed(s) && (const char *)sp >= (const char *)s->ss_sp &&
           (const char *)sp < (const char *)s->ss_sp + s->ss_size;
}

void fz_altstack_init(struct fz_fiber *f, bool inherit)
{
    f->altstack = (stack_t){.ss_flags = SS_DISABLE};
    if (inherit)
        read_loaded(&f->altstack);
}
