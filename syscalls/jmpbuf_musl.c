/* musl's x86-64 jmp_buf (see jmpbuf.h), as musl 1.2.3 writes it:
 *
 * - setjmp (src/setjmp/x86_64/setjmp.s) stores rbx, rbp, r12-r15, then the
 *   caller's stack pointer (its rsp after the return) in __jb[6] and the
 *   return address in __jb[7], none of them mangled.
 * - sigsetjmp with a nonzero savemask (src/signal/x86_64/sigsetjmp.s)
 *   moves its own return address into __fl, calls setjmp from inside its
 *   body, and __sigsetjmp_tail saves the mask in __ss; a longjmp to that
 *   buffer returns into sigsetjmp's body, whose tail restores the mask with
 *   a raw rt_sigprocmask.  With savemask 0 it tail-jumps to setjmp and __fl
 *   is left as it was, possibly garbage: so "the mask is restored" is read
 *   from where the jump resumes (__jb[7] inside sigsetjmp), not from __fl.
 */
#include <setjmp.h>
#include <string.h>
#include "syscalls/jmpbuf.h"

/* sigsetjmp's body is 40-odd bytes: its call to setjmp returns well
 * within this. */
#define SIGSETJMP_BODY_BYTES 64

uintptr_t fz_jmpbuf_sp(const struct __jmp_buf_tag *env)
{
    return (uintptr_t)env->__jb[6];
}

bool fz_jmpbuf_saved_mask(const struct __jmp_buf_tag *env, uint64_t *mask)
{
    uintptr_t resume = (uintptr_t)env->__jb[7], body = (uintptr_t)&sigsetjmp;
    if (resume <= body || resume - body >= SIGSETJMP_BODY_BYTES)
        return false;
    memcpy(mask, &env->__ss, sizeof *mask);
    return true;
}
