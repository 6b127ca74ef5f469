/* What both libcs' TCB code shares (runtime/tls_glibc.c, tls_musl.c): how
 * a carrier loads a thread pointer, and the fake tids fibers carry.
 *
 * Threads: fz_thread_pointer_setup runs once on the main thread before any
 * other thread exists; the rest from any thread. */
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/auxv.h>
#include <asm/prctl.h>
#include "runtime/sys.h"
#include "runtime/tls.h"

static bool wrfsbase; /* the kernel lets user code write FS itself */
static atomic_uint next_fake_tid;

void fz_thread_pointer_setup(void)
{
    wrfsbase = (getauxval(AT_HWCAP2) & 2) != 0; /* HWCAP2_FSGSBASE */
    atomic_init(&next_fake_tid, 0);
}

void fz_set_thread_pointer(void *tcb)
{
    if (wrfsbase)
        __asm__ volatile("wrfsbase %0" ::"r"(tcb) : "memory");
    else
        fz_sys2(SYS_arch_prctl, ARCH_SET_FS, tcb);
}

/* Unique among live fibers: 2^29 - 2^24 numbers before one comes back, all
 * above PID_MAX_LIMIT and below 0x3fffffff (musl keeps flag bits above
 * that in a mutex word holding an owner's tid). */
int fz_tls_fake_tid(void)
{
    unsigned n = atomic_fetch_add(&next_fake_tid, 1);
    return (int)(FZ_FAKE_TID_BASE + (n % 0x1f000000u));
}
