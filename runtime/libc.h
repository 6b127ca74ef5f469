/* The seam between the runtime and the C library's thread internals.
 *
 * Everything the runtime knows about where a libc keeps per-thread state
 * (struct pthread fields, ld.so's thread lists and their lock, the rseq area,
 * libc's own TLS block, the layout of the public objects whose encoding
 * changed between releases) is in struct fz_libc, filled and checked once by
 * fz_libc_setup.  The code that builds and recycles TCBs (tls_glibc.c), the set*id
 * broadcast (setxid_glibc.c) and the robust-list duty (robust_glibc.c) only read it.
 * runtime/libc_glibc.c fills it for glibc; a musl port would add another
 * file filling the same struct (or refusing).
 *
 * Offsets are in bytes from the thread pointer (the TCB), which on x86_64
 * glibc is the struct pthread.  -1 means "this libc has no such field".
 * Written once, before the runtime starts any thread; read-only after.
 */
#ifndef FZ_LIBC_H
#define FZ_LIBC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

struct fz_libc {
    char version[16]; /* as gnu_get_libc_version says */
    unsigned minor;   /* 2.<minor> */

    /* struct pthread */
    size_t pd_size;
    ptrdiff_t list, tid, robust_prev, robust_head, cleanup_jmp_buf, cancelhandling;
    ptrdiff_t cancelstate; /* a byte (2.34, 2.35); -1: bit 0 of cancelhandling */
    ptrdiff_t specific_1stblock, specific, specific_used, report_events;
    ptrdiff_t user_stack;     /* "never cache or free this stack" */
    unsigned user_stack_size; /* 1 (bool user_stack) or 4 (enum stack_mode, 2.42) */
    int user_stack_value;     /* true, or ALLOCATE_GUARD_USER */
    ptrdiff_t result, start_routine, arg;
    ptrdiff_t stackblock, stackblock_size, guardsize, reported_guardsize;
    ptrdiff_t tpp;           /* priority-protect data, malloc'd */
    ptrdiff_t res;           /* struct __res_state */
    ptrdiff_t tls_state;     /* strsignal and strerror_l buffers, malloc'd */
    ptrdiff_t getrandom_buf; /* vDSO getrandom state (2.41+), else -1 */
    long robust_futex_offset;

    /* thread-pointer-relative TLS of libc */
    ptrdiff_t resp;            /* __resp */
    ptrdiff_t rseq_offset;     /* __rseq_offset */
    unsigned rseq_size;        /* __rseq_size; 0: no rseq registration */
    ptrdiff_t libc_tls_offset; /* libc's static TLS block: tcb - offset */
    size_t libc_tls_size;

    /* ld.so's _rtld_global */
    char *rtld_global;
    size_t stack_used, stack_user, stack_cache_lock;

    /* public objects: where pthread_cond_init keeps the pshared/clock bits */
    size_t cond_flags;

    /* functions */
    void *(*allocate_tls)(void *);
    void *(*allocate_tls_init)(void *, bool);
    bool tls_init_thread_arg; /* its 2nd argument for a thread that is not main */
    void (*ctype_init)(void);
    void (*call_tls_dtors)(void);
    struct fz_key_slot {
        uintptr_t seq; /* odd: in use */
        void (*destr)(void *);
    } * keys;
    unsigned keys_max, key_2nd_level; /* PTHREAD_KEYS_MAX, keys per level-2 block */
};

extern struct fz_libc fz_libc;

/* The real thread calls (the program's names may be interposed). */
struct fz_os_thread_calls {
    int (*create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    int (*detach)(pthread_t);
};

/* Find and check every fact above for the running libc.  Runs on the main
 * thread before the runtime starts any OS thread; it starts one probe
 * thread itself and waits for its end.  On false, *why is one line naming
 * the glibc version and the fact that did not hold, and the runtime must
 * stay off. */
bool fz_libc_setup(const struct fz_os_thread_calls *os, const char **why);

/* ld.so's lists of every TCB (nptl's threads on dl_stack_used; user-stack
 * threads, the main thread and fibers on dl_stack_user) and their lock,
 * GL(dl_stack_cache_lock) in glibc's lll protocol. */
void fz_libc_stack_list_lock(void);
/* Takes it only if it comes free within `spins` tries. */
bool fz_libc_stack_list_trylock(unsigned spins);
void fz_libc_stack_list_unlock(void);
/* Put a TCB on dl_stack_user (takes the lock). */
void fz_libc_link_tcb(void *tcb);
/* The first TCB on the lists for which pick(tcb, arg) is true, or NULL.
 * The caller holds the lock, or knows the lists cannot change (glibc's
 * set*id broadcast holds it while its handlers run). */
void *fz_libc_find_tcb(bool (*pick)(void *tcb, void *arg), void *arg);

#define FZ_AT(tcb, off, type) (*(type *)((char *)(tcb) + (off)))

#endif
