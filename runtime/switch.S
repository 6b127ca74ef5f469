/* x86_64 context switch between fibers (System V ABI).
 *
 * void fz_switch(void **save_sp, void *load_sp, atomic_int *release_flag)
 *   Pushes the callee-saved registers, MXCSR and the x87 control word on the
 *   current stack, stores the stack pointer in *save_sp, clears *release_flag
 *   (if not NULL) once the context is completely saved -- from that store on
 *   another carrier may resume it -- then loads load_sp and pops the same
 *   frame.  Caller-saved registers are the compiler's business.
 *
 * A new fiber's stack is prepared by fz_ctx_prepare (fiber.c) so that the
 * first switch "returns" into fz_fiber_trampoline, which calls the entry
 * function in %r13 with the argument in %r12.
 */
    .text
    .globl fz_switch
    .hidden fz_switch
    .type fz_switch, @function
fz_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    testq %rdx, %rdx
    jz 1f
    movl $0, (%rdx)            /* plain store is a release store on x86 */
1:  movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size fz_switch, .-fz_switch

    .globl fz_fiber_trampoline
    .hidden fz_fiber_trampoline
    .type fz_fiber_trampoline, @function
fz_fiber_trampoline:
    .cfi_startproc
    .cfi_undefined rip          /* outermost frame: unwinders stop here */
    xorl %ebp, %ebp
    movq %r12, %rdi
    call *%r13                  /* never returns */
    ud2
    .cfi_endproc
    .size fz_fiber_trampoline, .-fz_fiber_trampoline

/* The return path of a signal handler the runtime installs with the raw
 * rt_sigaction (SA_RESTORER): the kernel's rt_sigreturn.  libc's own
 * trampoline is not exported. */
    .globl fz_signal_restorer
    .hidden fz_signal_restorer
    .type fz_signal_restorer, @function
fz_signal_restorer:
    movq $15, %rax              /* SYS_rt_sigreturn */
    syscall
    ud2
    .size fz_signal_restorer, .-fz_signal_restorer

    .section .note.GNU-stack,"",@progbits
