/* The offload call interface written by hand (see offload.h): musl's
 * (libffi is not packaged for musl), and glibc's when libffi cannot be
 * loaded (offload_glibc.c).
 *
 * Every offloaded signature (FZ_OFFLOAD and FZ_OFFLOADED uses in dns.c,
 * fd.c, file.c, process.c) takes at most 8 arguments, each an integer or a
 * pointer, and returns one: under the x86-64 System V ABI each such value
 * is one INTEGER-class eightbyte, the first six arguments travel in rdi,
 * rsi, rdx, rcx, r8, r9 and the rest in 8-byte stack slots, and the result
 * comes back in rax.  So a call through a pointer typed as taking n longs
 * and returning a long passes exactly what the real prototype would, once
 * each argument is widened to a long as its own type converts (a callee
 * reads only the low bytes of a narrower parameter).  The result's low
 * bytes are the callee's value; the caller's union reads just those.
 * offload.h's kinds are integers and pointers only, as every offloaded
 * signature is: a floating-point or struct argument would need a kind of
 * its own, here and in offload_glibc.c's libffi types.  prepare refuses a
 * kind it does not know.  Varargs functions are never offloaded (their
 * wrappers are fixed-argument: fcntl_lock, openat_fixed), so %al needs no
 * setting.
 */
#include "syscalls/offload.h"

typedef long word;

bool fz_offload_direct_prepare(const struct fz_offload *o)
{
    if (o->nargs > 8 || o->result > FZ_KIND_POINTER)
        return false;
    for (unsigned i = 0; i < o->nargs; i++)
        if (o->kinds[i] > FZ_KIND_POINTER)
            return false;
    return true;
}

/* The argument at p, of the given kind, as its conversion to long gives. */
static word widen(unsigned kind, const void *p)
{
    switch (kind) {
    case FZ_KIND_INT:
        return *(const int *)p;
    case FZ_KIND_UINT:
        return (word) * (const unsigned *)p;
    case FZ_KIND_LONG:
        return *(const long *)p;
    case FZ_KIND_ULONG:
        return (word) * (const unsigned long *)p;
    case FZ_KIND_LLONG:
        return (word) * (const long long *)p;
    case FZ_KIND_ULLONG:
        return (word) * (const unsigned long long *)p;
    default:
        return (word)(uintptr_t) * (void *const *)p;
    }
}

void fz_offload_direct_call(const struct fz_offload *o, void (*fn)(void), fz_offload_word *ret,
                            void **args)
{
    word a[8] = {0};
    for (unsigned i = 0; i < o->nargs; i++)
        a[i] = widen(o->kinds[i], args[i]);
    word r;
    switch (o->nargs) {
    case 0:
        r = ((word(*)(void))fn)();
        break;
    case 1:
        r = ((word(*)(word))fn)(a[0]);
        break;
    case 2:
        r = ((word(*)(word, word))fn)(a[0], a[1]);
        break;
    case 3:
        r = ((word(*)(word, word, word))fn)(a[0], a[1], a[2]);
        break;
    case 4:
        r = ((word(*)(word, word, word, word))fn)(a[0], a[1], a[2], a[3]);
        break;
    case 5:
        r = ((word(*)(word, word, word, word, word))fn)(a[0], a[1], a[2], a[3], a[4]);
        break;
    case 6:
        r = ((word(*)(word, word, word, word, word, word))fn)(a[0], a[1], a[2], a[3], a[4], a[5]);
        break;
    case 7:
        r = ((word(*)(word, word, word, word, word, word, word))fn)(a[0], a[1], a[2], a[3], a[4],
                                                                    a[5], a[6]);
        break;
    default:
        r = ((word(*)(word, word, word, word, word, word, word, word))fn)(a[0], a[1], a[2], a[3],
                                                                          a[4], a[5], a[6], a[7]);
        break;
    }
    *ret = (fz_offload_word)r;
}
