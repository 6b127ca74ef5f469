/* Per-fiber thread-local storage: every fiber owns a complete libc TCB.
 *
 * One interface, two sides: runtime/tls_glibc.c builds glibc's struct
 * pthread through ld.so (facts from runtime/libc_glibc.c), runtime/tls_musl.c
 * builds musl's itself.  Nothing outside those files knows a TCB's layout. */
#ifndef FZ_TLS_H
#define FZ_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct fz_fiber;

struct fz_os_thread_calls;

/* Find and check the running glibc's thread internals (runtime/libc.h,
 * libc_glibc.c; `os` are the real thread calls its probe thread needs).
 * On false, *why says what did not match and the runtime must stay off
 * (every hook passes through: threads stay real threads). */
bool fz_tls_setup(const struct fz_os_thread_calls *os, const char **why);

/* The signals the C library keeps for itself (bit sig - 1): the runtime's
 * own threads leave them deliverable, and no program may send one to a
 * thread.  glibc: 32 (cancellation), 33 (set*id broadcast).  musl: 32
 * (timer threads), 33 (cancellation), 34 (__synccall, and our set*id
 * broadcast, runtime/setxid_musl.c).  The cancellation signal is the one
 * libc's handler ignores on a thread nobody cancelled, so the pool can
 * borrow it (runtime/pool.c). */
#ifdef __GLIBC__
#define FZ_LIBC_SIGNALS ((1ull << 31) | (1ull << 32))
#define FZ_LIBC_CANCEL_SIGNAL 32
#else
#define FZ_LIBC_SIGNALS ((1ull << 31) | (1ull << 32) | (1ull << 33))
#define FZ_LIBC_CANCEL_SIGNAL 33
#endif

/* Fibers' fake tids start here: above PID_MAX_LIMIT (2^22), below
 * FUTEX_TID_MASK, so no OS thread has one. */
#define FZ_FAKE_TID_BASE 0x20000000u

/* The runtime's own OS threads exist (glibc is multi-threaded now): take
 * over what that changes (the set*id broadcast handler, see tls_glibc.c). */
void fz_tls_threads_started(void);

/* The process has one OS thread and one fiber again (start-up, once
 * libfiberize's own probe thread is gone): let libc know, so it takes its
 * single-threaded paths until the runtime starts its next OS thread, which
 * tells libc otherwise itself (and is followed by fz_tls_threads_started).
 * Does nothing where libc keeps the fact out of reach (glibc before 2.36,
 * musl) or when another OS thread exists. */
void fz_tls_alone(void);

/* A new TCB for a fiber (fiber != NULL: marked so fz_self() finds it) or
 * for a carrier's idle state (fiber == NULL: made on that carrier's OS
 * thread, whose current TCB must be the fiber that leaves it, e.g. the main
 * thread; the idle TCB takes the OS thread's tid, the fiber a fake one, and
 * the thread's rseq registration is dropped).  NULL when memory runs out.
 * Runs on a thread with a sane thread pointer (it calls malloc).  Creating
 * or recycling a fiber's TCB also wraps glibc's SIGSETXID handler once the
 * process is multi-threaded (tls_glibc.c says why). */
void *fz_tls_create(struct fz_fiber *fiber);
/* Make a finished fiber's TCB fresh for a new fiber: module TLS back to the
 * init images, struct pthread reset; libc's block kept (see tls_glibc.c). */
void fz_tls_recycle(void *tcb, struct fz_fiber *fiber);
/* The main thread's stack and guard as the C library's pthread_getattr_np
 * reports them, when they can be had cheaply (glibc: without reading
 * /proc/self/maps); false: ask pthread_getattr_np. */
bool fz_tls_main_stack(void **base, size_t *size, size_t *guard);
/* Mark the main thread's own TCB as the main fiber's. */
void fz_tls_adopt_main(struct fz_fiber *fiber);
/* First steps on a fiber with its own thread pointer loaded: what glibc's
 * start_thread does before the start routine (resolver state, ctype tables,
 * errno, locale). */
void fz_tls_enter(void);
/* Thread-exit work glibc would do: C++ thread_local destructors, then
 * pthread key destructors (up to PTHREAD_DESTRUCTOR_ITERATIONS rounds), then
 * free the key blocks, the dlerror state and the strsignal/strerror_l
 * buffers.  Runs on the exiting fiber. */
void fz_tls_exit(void);
/* The process ends (exit, _exit): mark the process-shared robust mutexes
 * fibers still hold FUTEX_OWNER_DIED, as the kernel does for threads. */
void fz_tls_process_exit(void);
/* The fiber whose TCB is loaded, or NULL (checks the marker). */
struct fz_fiber *fz_tls_current_fiber(void);

/* pthread_cancel for fibers: glibc would signal the target's tid, which a
 * fiber does not have, so the request is recorded in its TCB as glibc does
 * (true: cancellation is enabled there) and pending ones are seen here. */
bool fz_tcb_request_cancel(void *tcb);
bool fz_tcb_cancel_pending(void *tcb);

/* struct pthread fields the runtime reads or writes. */
void *fz_tcb_fiber(void *tcb);        /* fiber of a TCB, NULL if not a fiber's */
void **fz_tcb_result_slot(void *tcb); /* where pthread_exit stores the value */
void fz_tcb_set_stack(void *tcb, void *base, size_t size, size_t guard);

/* Run a thread's body on the calling fiber (whose TCB is tcb), below the
 * point pthread_exit and cancellation end it at, as libc's own thread start
 * does.  Returns when body returns (its value goes to the result slot) or
 * when the thread was ended early (the value pthread_exit gave is there). */
void fz_tls_run_body(void *tcb, void *(*body)(void *), void *arg);
/* End the calling fiber's body early with `value`: its cleanup handlers run
 * (glibc: libc_exit, the real pthread_exit, unwinds; musl: the handlers
 * pushed with pthread_cleanup_push run here) and fz_tls_run_body returns. */
_Noreturn void fz_tls_thread_exit(void *value, void (*libc_exit)(void *));

/* Keys and modules, where libc cannot see fibers by itself.  glibc keeps
 * its key table and every module's TLS where the runtime reads them: these
 * are no-ops there.  musl's key destructors are private and its dlopen
 * gives TLS only to threads on its own list, which fibers are not on. */
void fz_tls_key_created(unsigned key, void (*destructor)(void *));
void fz_tls_key_deleted(unsigned key);
void fz_tls_modules_changed(void);

/* The tid a pthread_mutex_t names as its holder, for dumps: `word` is the
 * address fibers park on when they wait for it (syscalls/mutex.c), `read`
 * copies program memory that may be gone.  0 if none or unknown.
 * glibc: __owner, 8 bytes after __lock; musl: see tls_musl.c. */
pid_t fz_tls_mutex_holder(const void *word, bool (*read)(const void *, void *, size_t));

/* The tid glibc keeps in a TCB (a fiber's: its fake unique one). */
pid_t fz_tcb_tid(void *tcb);
/* Where a TCB keeps the thread's tid, set by fz_tls_setup.  Read on
 * every mutex and rwlock fast path, so inline: an out-of-line call there
 * was a fifth of an uncontended lock's cost. */
extern ptrdiff_t fz_tcb_tid_offset;
/* The calling thread's tid as its libc records it in the loaded TCB
 * (fibers: their fake unique tid); mutex owners are recorded with it, as
 * the libc does. */
static inline pid_t fz_tcb_current_tid(void)
{
    int tid;
    __asm__ volatile("mov %%fs:(%1), %0" : "=r"(tid) : "r"(fz_tcb_tid_offset));
    return tid;
}
/* Overwrite it (mutex.c's priority-protect calls; restore it after). */
static inline void fz_tcb_set_current_tid(pid_t tid)
{
    __asm__ volatile("mov %0, %%fs:(%1)" : : "r"(tid), "r"(fz_tcb_tid_offset) : "memory");
}

/* Once, before any thread (runtime/thread_pointer.c; the TCB sides call it
 * from fz_tls_setup). */
void fz_thread_pointer_setup(void);
/* A fresh fake tid for a fiber's TCB. */
int fz_tls_fake_tid(void);

/* Load a thread pointer on the calling OS thread (arch_prctl, or wrfsbase
 * where the kernel enables FSGSBASE).  Raw syscall: no TLS touched. */
void fz_set_thread_pointer(void *tcb);
static inline void *fz_thread_pointer(void)
{
    void *tp;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

#endif
