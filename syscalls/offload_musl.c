/* The offload call interface on musl (see offload.h): the hand-written
 * one (offload_direct.c), libffi not being packaged for musl. */
#include "syscalls/offload.h"

bool fz_offload_iface_load(void)
{
    return true; /* nothing to load */
}

bool fz_offload_iface_prepare(struct fz_offload *o)
{
    return fz_offload_direct_prepare(o);
}

void fz_offload_iface_call(const struct fz_offload *o, void (*fn)(void), fz_offload_word *ret,
                           void **args)
{
    fz_offload_direct_call(o, fn, ret, args);
}
