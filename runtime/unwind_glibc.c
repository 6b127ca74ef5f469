/* Dump backtraces on glibc (see unwind.h): libunwind's local unwinding,
 * through the entry points preload/observe.c resolved from the copy it
 * loaded.  Without it a dump has no backtraces. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>
#include "runtime/unwind.h"

const char *const fz_unwind_library = "libunwind.so.8";

int fz_unwind_context(const struct fz_unwinder *u, ucontext_t *uc, bool signal_frame,
                      uintptr_t *ips, uint32_t *exact, int max)
{
    *exact = signal_frame ? 1 : 0;
    if (!u)
        return 0;
    unw_cursor_t cursor;
    if (u->init_local2(&cursor, uc, signal_frame ? UNW_INIT_SIGNAL_FRAME : 0) < 0)
        return 0;
    int n = 0;
    do {
        unsigned long ip;
        if (u->get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        if (u->is_signal_frame(&cursor) > 0 && n + 1 < max)
            *exact |= 1u << (n + 1);
        ips[n++] = ip;
    } while (n < max && u->step(&cursor) > 0);
    return n;
}

bool fz_unwind_name(const struct fz_unwinder *u, uintptr_t pc, char *buf, size_t len,
                    uintptr_t *off)
{
    if (!u)
        return false;
    /* a context that is just this pc: libunwind names it from the ELF
     * symbol table (static functions included), not only dynamic symbols */
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    uc.uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
    uc.uc_mcontext.gregs[REG_RSP] = (greg_t)&uc;
    unw_cursor_t cursor;
    unsigned long offset;
    if (u->init_local2(&cursor, &uc, UNW_INIT_SIGNAL_FRAME) < 0)
        return false;
    int r = u->get_proc_name(&cursor, buf, len, &offset);
    if (r != 0 && r != -UNW_ENOMEM)
        return false;
    buf[len - 1] = '\0';
    *off = offset;
    return true;
}

const char *fz_unwind_note(const struct fz_unwinder *u)
{
    return u ? NULL : "no backtraces: libunwind could not be loaded";
}
