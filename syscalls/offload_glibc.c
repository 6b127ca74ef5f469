/* The offload call interface on glibc (see offload.h): libffi, which
 * knows the ABI for any signature, prepared once per offloaded function
 * into the interface's room in struct fz_offload.
 *
 * libffi is loaded (dlopen, RTLD_LOCAL) by the first offloaded call, not
 * linked: linked, every fiberized process paid for loading it at start-up
 * -- 40-50 us of each exec of /bin/true, more than the whole runtime's
 * start took from fork to exec, measured with a preloaded empty library
 * with and without -lffi -- and for its five mappings at every fork and
 * exit, and most programs never make an offloaded call.  Without the
 * library (not installed, or damaged) the hand-written interface
 * (offload_direct.c) makes the calls.  A call that comes while another
 * fiber loads it waits for that; one from a signal handler before it is
 * loaded (dlopen is not safe there) is made in place.
 */
#include <dlfcn.h>
#include <ffi.h>
#include <limits.h>
#include <stdatomic.h>
#include "runtime/park.h"
#include "syscalls/offload.h"

struct ffi_iface {
    ffi_cif cif;
    ffi_type *types[FZ_OFFLOAD_MAX_ARGS];
};

_Static_assert(sizeof(struct ffi_iface) <= sizeof(((struct fz_offload *)0)->iface),
               "libffi's call interface fits struct fz_offload's room");
_Static_assert(sizeof(ffi_arg) == sizeof(fz_offload_word),
               "libffi widens integer results to the word the callers read");
/* the types below are looked up by their sized names */
_Static_assert(sizeof(int) == 4 && sizeof(long) == 8 && sizeof(long long) == 8,
               "LP64: int is 32 bits, long and long long 64");

static const char *const ffi_library = "libffi.so.8"; /* Debian's libffi8 */

/* Written once, by the one fiber that moved `loaded` from NOT_YET to
 * LOADING; read only after `loaded` says LOADED. */
static struct {
    ffi_status (*prep_cif)(ffi_cif *, ffi_abi, unsigned, ffi_type *, ffi_type **);
    void (*call)(ffi_cif *, void (*)(void), void *, void **);
    ffi_type *sint32, *uint32, *sint64, *uint64, *pointer;
} lib;
enum { NOT_YET, LOADING, LOADED, MISSING };
static atomic_int loaded;

static bool still_loading(void *unused)
{
    (void)unused;
    return atomic_load_explicit(&loaded, memory_order_acquire) == LOADING;
}

bool fz_offload_iface_load(void)
{
    int state = atomic_load_explicit(&loaded, memory_order_acquire);
    if (state != NOT_YET && state != LOADING)
        return true; /* final: libffi's interface or the direct one */
    if (fz_in_signal_handler())
        return false; /* in place this time; a later call loads it */
    /* one loader; calls that come meanwhile wait for it (made in place,
     * a call that waits long would hold its carrier) */
    if (state == LOADING || !atomic_compare_exchange_strong(&loaded, &state, LOADING)) {
        while (atomic_load_explicit(&loaded, memory_order_acquire) == LOADING)
            fz_park_addr(&loaded, ~0u, still_loading, NULL, 0, FZ_INTR_NONE);
        return true;
    }
    void *h = dlopen(ffi_library, RTLD_NOW | RTLD_LOCAL);
    if (h) {
        lib.prep_cif = (ffi_status(*)(ffi_cif *, ffi_abi, unsigned, ffi_type *, ffi_type **))dlsym(
            h, "ffi_prep_cif");
        lib.call = (void (*)(ffi_cif *, void (*)(void), void *, void **))dlsym(h, "ffi_call");
        lib.sint32 = dlsym(h, "ffi_type_sint32");
        lib.uint32 = dlsym(h, "ffi_type_uint32");
        lib.sint64 = dlsym(h, "ffi_type_sint64");
        lib.uint64 = dlsym(h, "ffi_type_uint64");
        lib.pointer = dlsym(h, "ffi_type_pointer");
    }
    bool ok = h && lib.prep_cif && lib.call && lib.sint32 && lib.uint32 && lib.sint64 &&
              lib.uint64 && lib.pointer;
    atomic_store_explicit(&loaded, ok ? LOADED : MISSING, memory_order_release);
    fz_unpark_addr(&loaded, ~0u, UINT_MAX);
    return true;
}

static ffi_type *ffi_type_of(unsigned kind)
{
    switch (kind) {
    case FZ_KIND_INT:
        return lib.sint32;
    case FZ_KIND_UINT:
        return lib.uint32;
    case FZ_KIND_LONG:
    case FZ_KIND_LLONG:
        return lib.sint64;
    case FZ_KIND_ULONG:
    case FZ_KIND_ULLONG:
        return lib.uint64;
    default:
        return lib.pointer;
    }
}

/* Only once `loaded` is final (fz_offload_iface_load returned first), so
 * an interface is prepared and called the same way. */
bool fz_offload_iface_prepare(struct fz_offload *o)
{
    if (atomic_load_explicit(&loaded, memory_order_acquire) != LOADED)
        return fz_offload_direct_prepare(o);
    struct ffi_iface *f = (struct ffi_iface *)o->iface;
    for (unsigned i = 0; i < o->nargs; i++)
        f->types[i] = ffi_type_of(o->kinds[i]);
    return lib.prep_cif(&f->cif, FFI_DEFAULT_ABI, o->nargs, ffi_type_of(o->result), f->types) ==
           FFI_OK;
}

void fz_offload_iface_call(const struct fz_offload *o, void (*fn)(void), fz_offload_word *ret,
                           void **args)
{
    if (atomic_load_explicit(&loaded, memory_order_acquire) != LOADED) {
        fz_offload_direct_call(o, fn, ret, args);
        return;
    }
    struct ffi_iface *f = (struct ffi_iface *)o->iface;
    lib.call(&f->cif, fn, ret, args);
}
