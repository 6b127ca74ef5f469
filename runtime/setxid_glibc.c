/* glibc's set*id broadcast in a process whose threads are fibers.
 *
 * Split from tls_glibc.c: this is the one place the runtime steps into glibc's
 * signal protocol.  The TCB lists and their lock come from runtime/libc.h.
 *
 * Threads: setxid_on_own_tcb runs in signal context on any OS thread (raw
 * syscalls and list reads only); fz_setxid_wrap_handler on whichever
 * thread creates a fiber first once the process is multi-threaded.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/single_threaded.h>
#include "runtime/libc.h"
#include "runtime/setxid.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

/* glibc's internal signal for the set*id broadcast (SIGRTMIN + 1) */
enum { SIGSETXID = 33 };

/* ---- the set*id broadcast ----------------------------------------------
 * In a threaded process glibc's setuid and friends (__nptl_setxid) mark
 * every TCB on GL(dl_stack_used) and GL(dl_stack_user), send SIGSETXID to
 * each one's tid and wait until the handler, on that OS thread, has applied
 * the change and cleared the mark on THREAD_SELF -- glibc assumes the TCB a
 * thread has loaded is the one with its tid.  Fiber TCBs carry fake tids, so
 * they are never signalled; carriers are, but a carrier runs the handler
 * with a fiber's TCB loaded, clears that one's mark and leaves its own set,
 * and glibc signals it again, forever (setuid hung).  So glibc's handler is
 * wrapped: it runs on the TCB that carries the receiving OS thread's tid
 * (the carrier's own, or for the main thread the main fiber's), found on the
 * lists, which __nptl_setxid keeps locked the whole time.  glibc installs its
 * handler at the first real pthread_create (late_init) and sets
 * __libc_single_threaded to false after that; until then set*id does no
 * broadcast.  The runtime starts its carriers and monitor with the real
 * pthread_create, so the wrapper goes in right after that
 * (fz_tls_threads_started), before main runs: memcached calls setgroups
 * before it starts any thread.  Once: a program that installs its own
 * SIGSETXID handler is on its own. */

static struct fz_kernel_sigaction glibc_setxid;
static atomic_int setxid_state; /* 0 not yet, 1 being installed, 2 done */

static bool has_tid(void *tcb, void *tid)
{
    return FZ_AT(tcb, fz_libc.tid, int) == *(int *)tid;
}

static void *tcb_with_tid(int tid)
{
    return fz_libc_find_tcb(has_tid, &tid);
}

static void setxid_on_own_tcb(int sig, siginfo_t *info, void *uctx)
{
    void *loaded = fz_thread_pointer();
    int tid = (int)fz_sys0(SYS_gettid);
    void *own = FZ_AT(loaded, fz_libc.tid, int) == tid ? loaded : tcb_with_tid(tid);
    if (own && own != loaded)
        fz_set_thread_pointer(own);
    glibc_setxid.handler(sig, info, uctx);
    if (own && own != loaded)
        fz_set_thread_pointer(loaded); /* not part of the signal frame */
}

void fz_setxid_handler_will_return(void)
{
    atomic_store(&setxid_state, 0);
}

void fz_setxid_wrap_handler(void)
{
    if (atomic_load_explicit(&setxid_state, memory_order_relaxed) == 2 || __libc_single_threaded)
        return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&setxid_state, &expected, 1))
        return; /* another creator is at it */
    struct fz_kernel_sigaction wrapped;
    if (fz_sys4(SYS_rt_sigaction, SIGSETXID, NULL, &glibc_setxid, 8) == 0 &&
        (glibc_setxid.flags & SA_SIGINFO) && glibc_setxid.handler != setxid_on_own_tcb) {
        wrapped = glibc_setxid;
        wrapped.handler = setxid_on_own_tcb;
        fz_sys4(SYS_rt_sigaction, SIGSETXID, &wrapped, NULL, 8);
    }
    atomic_store(&setxid_state, 2);
}
