/* Resolution of the real libc symbols (see real.h).
 *
 * Other libraries' constructors may run before ours (the loader orders
 * constructors by dependencies only, and a preloaded library depends on
 * none of the program's), and they call interposed functions: libselinux's
 * calls fopen before our constructor has run.  So every slot starts out as
 * a forwarding stub that resolves all symbols on first use and then jumps
 * to the real function with the caller's arguments untouched.  After
 * resolution the slots hold the real functions.
 *
 * The stubs are a few instructions of assembly, not C: a C function cannot
 * forward arguments it does not know (the table holds ~150 signatures,
 * varargs ones among them), and GCC's __builtin_apply, which can, exists
 * in no other compiler.  Each stub loads its slot's address into %r11 (a
 * scratch register no call passes arguments in) and jumps to one shared
 * forwarder, which saves every argument register, resolves, restores them
 * and tail-jumps through the slot, so the real function returns straight
 * to our caller.  x86-64 System V only, like runtime/switch.S.
 *
 * How a name is looked up, and which names a libc may lack, differ per
 * libc: real_glibc.c and real_musl.c.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>
#include "syscalls/real.h"
#include "runtime/sys.h"

static atomic_int resolved;
static const char *first_missing;

/* A symbol this libc lacks (fz_real_may_lack: the program cannot have
 * linked against it, so only the runtime's own mistake or a lookup of our
 * export by name reaches it): say so and stop rather than jump to NULL. */
static void missing_symbol(void)
{
    static const char msg[] = "fiberize: a real libc function is missing\n";
    fz_sys3(SYS_write, 2, msg, sizeof msg - 1);
    _exit(127);
}

/* Called by the forwarder below (and fz_real_resolve): hidden, not static,
 * so the assembly can name it. */
__attribute__((used)) void fz_real_resolve_all(void)
{
    if (atomic_load_explicit(&resolved, memory_order_acquire))
        return;
    const char *missing = NULL;
#define FZ_REAL_LOOKUP(ret, name, args)                                                            \
    {                                                                                              \
        void *p = fz_real_lookup(#name);                                                           \
        if (!p && !missing && !fz_real_may_lack(#name))                                            \
            missing = #name;                                                                       \
        fz_real.name = (ret(*) args)(p ? p : (void *)missing_symbol);                              \
    }
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_LOOKUP)
#undef FZ_REAL_LOOKUP
    first_missing = missing;
    atomic_store_explicit(&resolved, 1, memory_order_release);
}

/* The forwarder: %r11 holds the address of the slot to call through.  It
 * saves the six integer argument registers, %rax (the vector-register
 * count of a varargs call) and the eight vector argument registers, keeps
 * the stack 16-byte aligned for the call, and leaves arguments passed on
 * the stack where the caller put them. */
__asm__(".text\n"
        ".p2align 4\n"
        ".type fz_real_forward, @function\n"
        "fz_real_forward:\n"
        ".cfi_startproc\n"
        "pushq %rbp\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbp, -16\n"
        "movq %rsp, %rbp\n"
        ".cfi_def_cfa_register %rbp\n"
        "pushq %rdi\n"
        "pushq %rsi\n"
        "pushq %rdx\n"
        "pushq %rcx\n"
        "pushq %r8\n"
        "pushq %r9\n"
        "pushq %rax\n"
        "pushq %r11\n"
        "subq $128, %rsp\n"
        "movdqu %xmm0, 0(%rsp)\n"
        "movdqu %xmm1, 16(%rsp)\n"
        "movdqu %xmm2, 32(%rsp)\n"
        "movdqu %xmm3, 48(%rsp)\n"
        "movdqu %xmm4, 64(%rsp)\n"
        "movdqu %xmm5, 80(%rsp)\n"
        "movdqu %xmm6, 96(%rsp)\n"
        "movdqu %xmm7, 112(%rsp)\n"
        "call fz_real_resolve_all\n"
        "movdqu 0(%rsp), %xmm0\n"
        "movdqu 16(%rsp), %xmm1\n"
        "movdqu 32(%rsp), %xmm2\n"
        "movdqu 48(%rsp), %xmm3\n"
        "movdqu 64(%rsp), %xmm4\n"
        "movdqu 80(%rsp), %xmm5\n"
        "movdqu 96(%rsp), %xmm6\n"
        "movdqu 112(%rsp), %xmm7\n"
        "addq $128, %rsp\n"
        "popq %r11\n"
        "popq %rax\n"
        "popq %r9\n"
        "popq %r8\n"
        "popq %rcx\n"
        "popq %rdx\n"
        "popq %rsi\n"
        "popq %rdi\n"
        "popq %rbp\n"
        ".cfi_def_cfa %rsp, 8\n"
        "jmpq *(%r11)\n"
        ".cfi_endproc\n"
        ".size fz_real_forward, .-fz_real_forward\n");

/* One stub per symbol.  fz_real_slot_<name> holds &fz_real.<name>, so the
 * assembly never needs the field's offset. */
#define FZ_REAL_STUB(ret, name, args)                                                              \
    __attribute__((used)) static void *const fz_real_slot_##name __asm__("fz_real_slot_" #name) =  \
        (void *)&fz_real.name;                                                                     \
    void fz_real_stub_##name(void);                                                                \
    __asm__(".text\n"                                                                              \
            ".p2align 4\n"                                                                         \
            ".globl fz_real_stub_" #name "\n"                                                      \
            ".hidden fz_real_stub_" #name "\n"                                                     \
            ".type fz_real_stub_" #name ", @function\n"                                            \
            "fz_real_stub_" #name ":\n"                                                            \
            ".cfi_startproc\n"                                                                     \
            "movq fz_real_slot_" #name "(%rip), %r11\n"                                            \
            "jmp fz_real_forward\n"                                                                \
            ".cfi_endproc\n"                                                                       \
            ".size fz_real_stub_" #name ", .-fz_real_stub_" #name "\n");
FZ_REAL_ALL_SYMBOLS(FZ_REAL_STUB)
#undef FZ_REAL_STUB

struct fz_real fz_real = {
#define FZ_REAL_INIT(ret, name, args) .name = (ret(*) args)fz_real_stub_##name,
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_INIT)
#undef FZ_REAL_INIT
};

int fz_real_resolve(const char **missing)
{
    fz_real_resolve_all();
    *missing = first_missing;
    return first_missing == NULL;
}
