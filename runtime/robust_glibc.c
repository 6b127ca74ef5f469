/* Robust mutexes held by fibers: the kernel's exit-time duty, done here.
 *
 * A robust mutex's owner is recorded on its thread's robust list (in
 * struct pthread, robust_head), which the kernel walks when an OS thread
 * exits.  A fiber's list lives in its own TCB, which the kernel never sees
 * (set_robust_list is per OS thread), so the runtime walks it at fiber exit
 * and, for process-shared mutexes, at process exit.  Split from tls_glibc.c so
 * the TCB life cycle and this duty each read as one thing; the list's
 * place comes from runtime/libc.h.
 *
 * Threads: fz_robust_release runs on the exiting fiber (its own list);
 * fz_tls_process_exit on whichever thread ends the process, under ld.so's
 * list lock.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/futex.h>
#include "runtime/libc.h"
#include "runtime/robust.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

/* The kernel's duty at an OS thread's exit (futex(2), robust futexes),
 * done for a fiber, whose list the kernel never sees: every robust mutex
 * still held -- the futex word carries the owner's tid -- is marked
 * FUTEX_OWNER_DIED, so the next locker gets EOWNERDEAD, and one waiter
 * blocked in the kernel is woken.  Fibers waiting on it retry trylock and
 * find the mark themselves.  Entries with bit 0 set are priority-inherit
 * mutexes: marked too, but their kernel waiters are not woken (the kernel
 * queues them by owner tid, and a fiber's is fake: see mutex.c). */
static void mark_owner_died(int *word, int tid, bool pending, bool pi)
{
    int seen = __atomic_load_n(word, __ATOMIC_RELAXED);
    if (pending && !pi && seen == 0) {
        fz_futex_wake_shared(word, 1);
        return;
    }
    for (;;) {
        if ((seen & FUTEX_TID_MASK) != tid)
            return;
        int dead = (seen & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if (__atomic_compare_exchange_n(word, &seen, dead, false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            break;
    }
    if (!pi && (seen & FUTEX_WAITERS))
        fz_futex_wake_shared(word, 1);
}

/* shared_only: at process exit only mutexes other processes can see matter,
 * and the fibers may still run: the list is read, not reset. */
void fz_robust_release(void *tcb, bool shared_only)
{
    const ptrdiff_t robust_head = fz_libc.robust_head;
    char *head = (char *)tcb + robust_head;
    long futex_offset = FZ_AT(tcb, robust_head + 8, long);
    uintptr_t pending_entry = FZ_AT(tcb, robust_head + 16, uintptr_t);
    uintptr_t pending = pending_entry & ~(uintptr_t)1;
    int tid = FZ_AT(tcb, fz_libc.tid, int);
    const long kind_offset = offsetof(pthread_mutex_t, __data.__kind);
    unsigned limit = 2048; /* the kernel's ROBUST_LIST_LIMIT: a cycle ends */
    uintptr_t entry = FZ_AT(tcb, robust_head, uintptr_t);
    while (entry && (char *)(entry & ~(uintptr_t)1) != head && limit--) {
        char *node = (char *)(entry & ~(uintptr_t)1);
        int *word = (int *)(node + futex_offset);
        uintptr_t next = *(uintptr_t *)node;
        bool shared = FZ_AT(word, kind_offset, int) & 128; /* glibc's pshared kind bit */
        if ((uintptr_t)node != pending && (shared || !shared_only))
            mark_owner_died(word, tid, false, entry & 1);
        entry = next;
    }
    if (pending && !shared_only)
        mark_owner_died((int *)(pending + futex_offset), tid, true, pending_entry & 1);
    if (shared_only)
        return;
    FZ_AT(tcb, robust_head, void *) = head;
    FZ_AT(tcb, fz_libc.robust_prev, void *) = head;
    FZ_AT(tcb, robust_head + 16, void *) = NULL;
}

static bool release_if_fiber(void *tcb, void *unused)
{
    (void)unused;
    if (FZ_AT(tcb, fz_libc.tid, int) >= (int)FZ_FAKE_TID_BASE) /* fibers' only */
        fz_robust_release(tcb, true);
    return false; /* on to the next */
}

void fz_tls_process_exit(void)
{
    /* The lists change as fibers come and go on other carriers.  _exit may
     * be called from a handler that interrupted this thread while it held
     * the lock: give up after a few ms rather than wait forever. */
    if (!fz_libc.rtld_global || !fz_libc_stack_list_trylock(100000))
        return;
    fz_libc_find_tcb(release_if_fiber, NULL);
    fz_libc_stack_list_unlock();
}
