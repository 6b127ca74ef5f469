/* The offload call interface on glibc (see offload.h): libffi, which
 * knows the ABI for any signature, prepared once per offloaded function
 * into the interface's room in struct fz_offload. */
#include <ffi.h>
#include "syscalls/offload.h"

struct ffi_iface {
    ffi_cif cif;
    ffi_type *types[FZ_OFFLOAD_MAX_ARGS];
};

_Static_assert(sizeof(struct ffi_iface) <= sizeof(((struct fz_offload *)0)->iface),
               "libffi's call interface fits struct fz_offload's room");
_Static_assert(sizeof(ffi_arg) == sizeof(fz_offload_word),
               "libffi widens integer results to the word the callers read");

static ffi_type *ffi_type_of(unsigned kind)
{
    switch (kind) {
    case FZ_KIND_INT:
        return &ffi_type_sint;
    case FZ_KIND_UINT:
        return &ffi_type_uint;
    case FZ_KIND_LONG:
        return &ffi_type_slong;
    case FZ_KIND_ULONG:
        return &ffi_type_ulong;
    case FZ_KIND_LLONG:
        return &ffi_type_sint64;
    case FZ_KIND_ULLONG:
        return &ffi_type_uint64;
    default:
        return &ffi_type_pointer;
    }
}

bool fz_offload_iface_prepare(struct fz_offload *o)
{
    struct ffi_iface *f = (struct ffi_iface *)o->iface;
    for (unsigned i = 0; i < o->nargs; i++)
        f->types[i] = ffi_type_of(o->kinds[i]);
    return ffi_prep_cif(&f->cif, FFI_DEFAULT_ABI, o->nargs, ffi_type_of(o->result), f->types) ==
           FFI_OK;
}

void fz_offload_iface_call(const struct fz_offload *o, void (*fn)(void), fz_offload_word *ret,
                           void **args)
{
    struct ffi_iface *f = (struct ffi_iface *)o->iface;
    ffi_call(&f->cif, fn, ret, args);
}
