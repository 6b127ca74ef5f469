/* Dump backtraces on musl (see unwind.h): a walk of the frame-pointer
 * chain, since libunwind is not packaged for musl.
 *
 * From a context's rbp, each frame holds the caller's rbp at [rbp] and the
 * return address at [rbp + 8].  fiberize itself is built with
 * -fno-omit-frame-pointer, so its frames chain; program and musl code
 * usually is not (-O2 omits them): a function without its own frame is
 * skipped, and a chain through a register reused for data ends early.  A
 * sample that interrupts a prologue misses the caller.  So backtraces on
 * musl are partial unless the program is built with frame pointers; the
 * dump says so.  Every read goes through process_vm_readv, which fails
 * instead of faulting, and the chain must climb the stack: a wrong rbp
 * ends the walk, never the process.  Names come from dladdr (dump.c),
 * dynamic symbols only.
 */
#include <sys/uio.h>
#include "runtime/sched.h"
#include "runtime/sys.h"
#include "runtime/unwind.h"

/* More than any sane frame; a larger step is taken for a broken chain. */
#define MAX_FRAME_BYTES (16u << 20)

const char *const fz_unwind_library = NULL;

/* rbp's saved pair: the caller's rbp and the return address. */
static bool read_frame(uintptr_t rbp, uintptr_t pair[2])
{
    struct iovec local = {pair, 2 * sizeof *pair}, remote = {(void *)rbp, 2 * sizeof *pair};
    return fz_sys6(SYS_process_vm_readv, fz_rt.pid, (long)&local, 1, (long)&remote, 1, 0) ==
           (long)(2 * sizeof *pair);
}

int fz_unwind_context(const struct fz_unwinder *u, ucontext_t *uc, bool signal_frame,
                      uintptr_t *ips, uint32_t *exact, int max)
{
    (void)u; /* no libunwind is loaded with musl */
    *exact = signal_frame ? 1 : 0;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t rbp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    if (max <= 0 || pc == 0)
        return 0;
    int n = 0;
    ips[n++] = pc;
    /* the frame chain starts at or above the stack pointer */
    uintptr_t floor = sp;
    while (n < max && rbp >= floor && rbp - floor < MAX_FRAME_BYTES && rbp % 8 == 0) {
        uintptr_t pair[2];
        if (!read_frame(rbp, pair) || pair[1] == 0)
            break;
        ips[n++] = pair[1];
        floor = rbp + 2 * sizeof(uintptr_t);
        rbp = pair[0];
    }
    return n;
}

bool fz_unwind_name(const struct fz_unwinder *u, uintptr_t pc, char *buf, size_t len,
                    uintptr_t *off)
{
    (void)u, (void)pc, (void)buf, (void)len, (void)off;
    return false; /* dladdr's names only (dump.c) */
}

const char *fz_unwind_note(const struct fz_unwinder *u)
{
    (void)u;
    return "backtraces by frame pointers (musl, no libunwind): frames of code built without "
           "-fno-omit-frame-pointer are missing";
}
