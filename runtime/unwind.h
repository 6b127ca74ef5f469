/* Backtraces for fiber dumps (runtime/dump.c): how a saved or interrupted
 * register context becomes a list of return addresses, and how an address
 * is named beyond the dynamic symbols dladdr knows.
 *
 * Per libc: glibc programs get libunwind (loaded privately by
 * preload/observe.c, which hands in its entry points: DWARF unwinding,
 * right through code built without frame pointers, and ELF symbol tables);
 * musl has no packaged libunwind, so unwind_musl.c walks the frame-pointer
 * chain itself and names come from dladdr.
 */
#ifndef FZ_UNWIND_H
#define FZ_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <ucontext.h>
#include "runtime/dump.h"

/* The library preload/observe.c should load for u, or NULL: none is used
 * with this libc. */
extern const char *const fz_unwind_library;

/* Fill ips (at most max) from the context uc: the pc first, then return
 * addresses.  signal_frame: uc was interrupted (a sample), its pc is the
 * interrupted instruction.  *exact gets a bit per frame whose pc is an
 * interrupted instruction rather than a return address.  u is libunwind's
 * entry points when loaded, else NULL.  Runs in a signal handler on a
 * carrier: no TLS, no locks, no allocation. */
int fz_unwind_context(const struct fz_unwinder *u, ucontext_t *uc, bool signal_frame,
                      uintptr_t *ips, uint32_t *exact, int max);

/* The name of the function holding pc, and pc's offset in it, from what
 * the unwinder knows (static functions included); false if it has none. */
bool fz_unwind_name(const struct fz_unwinder *u, uintptr_t pc, char *buf, size_t len,
                    uintptr_t *off);

/* One line the dump prints about its backtraces (missing or partial), or
 * NULL. */
const char *fz_unwind_note(const struct fz_unwinder *u);

#endif
