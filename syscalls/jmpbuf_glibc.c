/* glibc's x86-64 jmp_buf (see jmpbuf.h): __jmpbuf holds rbx, rbp, r12-r15,
 * rsp, rip, with rbp, rsp and rip mangled by the pointer guard; sigsetjmp
 * records whether it saved the mask in __mask_was_saved and the mask in
 * __saved_mask. */
#include <string.h>
#include "syscalls/jmpbuf.h"

/* The stack pointer is slot 6, mangled with the pointer guard (%fs:0x30,
 * read from the thread's TCB): xor, then rotate left 0x11; undone here. */
uintptr_t fz_jmpbuf_sp(const struct __jmp_buf_tag *env)
{
    uintptr_t v = (uintptr_t)env->__jmpbuf[6], guard;
    __asm__("mov %%fs:0x30, %0" : "=r"(guard));
    v = (v >> 0x11) | (v << (64 - 0x11));
    return v ^ guard;
}

bool fz_jmpbuf_saved_mask(const struct __jmp_buf_tag *env, uint64_t *mask)
{
    if (!env->__mask_was_saved)
        return false;
    memcpy(mask, &env->__saved_mask, sizeof *mask);
    return true;
}
