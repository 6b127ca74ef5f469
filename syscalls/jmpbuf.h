/* What signal.c's longjmp interposers read from a jmp_buf, whose layout is
 * the libc's own: where the jump lands (its stack pointer) and the signal
 * mask it restores, if any.  jmpbuf_glibc.c and jmpbuf_musl.c. */
#ifndef FZ_JMPBUF_H
#define FZ_JMPBUF_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

/* The stack pointer the jump to env resumes with. */
uintptr_t fz_jmpbuf_sp(const struct __jmp_buf_tag *env);
/* If the jump to env restores a signal mask (sigsetjmp with savemask),
 * store its first 64 signals in *mask and return true. */
bool fz_jmpbuf_saved_mask(const struct __jmp_buf_tag *env, uint64_t *mask);

#endif
