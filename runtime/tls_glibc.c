/* Per-fiber glibc TCBs.
 *
 * Design (measurements in shared/TLS.md): each fiber gets a real
 * `struct pthread` with its static TLS block and DTV, built by ld.so's own
 * _dl_allocate_tls, and the carrier loads it into FS when it resumes the
 * fiber.  This is the only scheme in which the address of every __thread
 * object (errno included, whose address compilers cache across calls) stays
 * the same for the life of a fiber while it migrates between carriers, and
 * in which glibc's own THREAD_SELF users (stdio lock owners, recursive mutex
 * owners via tid, pthread keys, cleanup buffers) see one thread per fiber.
 *
 * What the design guarantees, for fibers (tests/bats/tls.bats: program
 * names in brackets; each runs natively and fiberized with 1 and 2 carriers
 * and must print the same):
 *  - every module's TLS starts from its init image: exe, startup libraries
 *    (initial-exec and general-dynamic access) [tls_threads], libraries
 *    dlopen'ed while fibers exist -- GD/TLSDESC lazily through
 *    __tls_get_addr, initial-exec through _dl_init_static_tls, because fiber
 *    TCBs are linked on GL(dl_stack_user) like user-stack threads
 *    [tls_dlopen]; also after dlopen/dlclose cycles that hand a module id to
 *    another library, for recycled TCBs [tls_dlclose];
 *  - TLS addresses fixed for the fiber's life, values kept across sleeps,
 *    yields, socket reads, mutex waits and migrations [tls_threads,
 *    tls_basic, tls_self]; own errno, which successful blocking calls leave
 *    alone and failing ones set for the caller only [tls_errno];
 *  - pthread_self() == TCB: unique among live threads, stable, equal to
 *    what pthread_create returned [tls_self];
 *  - stack canary (%fs:0x28) and pointer guard copied from the creating
 *    thread (process-wide values) [tls_canary: -fstack-protector-all,
 *    recursion spanning sleeps; tls_glibc jmp: longjmp after a migration];
 *  - C++ thread_local constructors/destructors once per touching fiber, in
 *    reverse order, before pthread key destructors, also after pthread_exit
 *    and when a destructor blocks [tls_cxx]; key destructors
 *    (PTHREAD_DESTRUCTOR_ITERATIONS rounds) [tls_churn, runtime.bats keys];
 *  - glibc per-thread state [tls_glibc]: malloc from migrating fibers and
 *    frees across them; stdio FILE locks owned per fiber (flockfile held
 *    across a sleep makes another fiber's fprintf wait; ftrylockfile is
 *    recursive for the owner only); dlerror state; uselocale; lock owners
 *    of recursive/errorcheck mutexes and rwlocks through a unique fake tid
 *    (0x20000000 + n, above PID_MAX_LIMIT); sched_getcpu() valid because
 *    the rseq cpu_id is RSEQ_CPU_ID_REGISTRATION_FAILED (glibc falls back
 *    to the vDSO; the carrier's registration is never copied), the main
 *    fiber's too (its TCB was the main thread's: its registration is
 *    dropped and its tid moves to carrier 0's idle TCB, see
 *    move_os_thread_identity); fork from a fiber: the child's only thread
 *    keeps that fiber's TLS and pthread_self;
 *  - a new fiber on a recycled TCB starts as fresh as a native thread:
 *    errno, h_errno, dlerror, locale, ctype tables, resolver state pointer
 *    reset; pending dlerror state, strsignal/strerror_l buffers and
 *    priority-protect data released at exit as __libc_thread_freeres
 *    would [tls_glibc fresh];
 *  - no growth from short-lived fibers: TCBs are pooled with libc's block
 *    (tcache, arena binding) kept, since __libc_thread_freeres is not
 *    exported [tls_churn: 1M threads, RSS growth after 100k: 0 kB];
 *  - setuid & co. from a fiber, the main one included, reach every OS
 *    thread and return (glibc's SIGSETXID handler runs on the TCB with the
 *    receiving thread's tid, runtime/setxid_glibc.c) [tls_setxid].
 * Not guaranteed:
 *  - the fake tid is what gettid() answers (runtime/identity.c; the pid for
 *    the main fiber); glibc calls that hand pd->tid to the kernel
 *    (affinity, sched params, pthread_getcpuclockid, names, async cancel)
 *    see the fake tid -- the main fiber's too -- and must be interposed
 *    (pthread_kill, pthread_sigqueue, pthread_getattr_np are: syscalls/
 *    sigthread.c, thread.c); robust and PI mutexes through the real glibc (the kernel
 *    knows only carrier tids and walks only carriers' robust lists: robust
 *    mutexes are marked owner-dead here at fiber and process exit, not when
 *    a signal kills the process);
 *  - sigaltstack and signal masks are not in the TCB (the runtime keeps
 *    them per fiber: altstack.c, sigmask.c);
 *  - a signal handler runs on the TCB its carrier has loaded: the fiber it
 *    interrupted; one landing on an idle carrier or in scheduler code is
 *    passed to a fiber (syscalls/signal.c) [tls_signal catches a handler on
 *    the TLS of a fiber running elsewhere];
 *  - libraries that use rseq themselves see cpu_id -2 and must fall back;
 *  - resolver state from res_init is dropped at recycling without glibc's
 *    res_nclose (IPv6 name-server addresses leak); sunrpc per-thread state
 *    and inet_ntoa's buffer stay with the recycled TCB;
 *  - a thread glibc creates itself (timer SIGEV_THREAD, aio) after the last
 *    fiber creation may run glibc's unwrapped SIGSETXID handler (runtime/setxid_glibc.c);
 *  - stacks of fibers are not made executable by a later dlopen of an
 *    exec-stack library (_dl_make_stacks_executable walks only
 *    GL(dl_stack_used)).
 *
 * The library itself has no TLS segment: a __thread variable in it would be
 * per fiber, not per carrier [tls.bats checks with readelf].
 *
 * Layout: every struct pthread / _rtld_global offset used here is glibc's
 * own for the running release, found and checked at start-up by
 * runtime/libc_glibc.c (the seam is runtime/libc.h; fz_libc, `L` below).
 * Only tcbhead_t, the ABI-fixed head of the TCB, is spelled out here.  The
 * set*id broadcast is runtime/setxid_glibc.c, the robust-list duty
 * runtime/robust_glibc.c.
 *
 * Threads: fz_tls_create/recycle/exit call libc and run on the fiber that
 * creates or exits; recycling is driven by the fiber pool (runtime/fiber.c),
 * which keeps each TCB paired with its fiber for life.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/single_threaded.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <locale.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <linux/futex.h>
#include "runtime/asan.h"
#include "runtime/libc.h"
#include "runtime/procstat.h"
#include "runtime/robust.h"
#include "runtime/setxid.h"
#include "runtime/tls.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

/* tcbhead_t, the head of struct pthread: x86_64 ABI, the same in every
 * glibc (its own static asserts pin it; sanitizers depend on it). */
enum {
    TCB_SELF = 0x10,
    TCB_MULTIPLE_THREADS = 0x18,
    TCB_SYSINFO = 0x20,
    TCB_STACK_GUARD = 0x28,
    TCB_POINTER_GUARD = 0x30,
    TCB_FEATURE_1 = 0x48,
};

#define AT(tcb, off, type) FZ_AT(tcb, off, type)
#define L fz_libc

/* One DTV entry (ld.so's dtv_t); dtv[-1].counter is the number of module
 * slots, dtv[0].counter the generation the DTV is current with. */
union dtv_entry {
    size_t counter;
    struct {
        void *val, *to_free;
    } pointer;
};

/* The marker that tells a fiber's TCB from a native thread's: native threads
 * keep their start routine in the same field. */
static void fiber_tcb_marker(void) {}

ptrdiff_t fz_tcb_tid_offset;

bool fz_tls_setup(const struct fz_os_thread_calls *os, const char **why)
{
    if (!fz_libc_setup(os, why))
        return false;
    fz_tcb_tid_offset = L.tid;
    fz_thread_pointer_setup();
    return true;
}

void fz_tls_threads_started(void)
{
    fz_setxid_wrap_handler();
}

/* The process's OS threads (/proc/self/stat's field 20, num_threads); 0:
 * unknown.  Start-up, one thread: the fd need not be owned. */
static long os_threads(void)
{
    char buf[512];
    const char *threads = fz_procstat_field("/proc/self/stat", false, buf, sizeof buf, 20);
    return threads ? strtol(threads, NULL, 10) : 0;
}

/* Since 2.36, x86_64 glibc's SINGLE_THREAD_P reads __libc_single_threaded
 * itself (by its internal alias); before, a hidden __libc_multiple_threads
 * we cannot reach.  libc's own copy is looked up in libc: the program's
 * may be a copy relocation, which glibc's pthread_create writes as well.
 * The probe thread (libc_glibc.c) has been joined, but the kernel counts
 * an exiting thread a little longer: a few looks. */
void fz_tls_alone(void)
{
    if (L.minor < 36)
        return;
    long threads = os_threads();
    for (int look = 0; threads > 1 && look < 20; look++) {
        fz_sys0(SYS_sched_yield);
        threads = os_threads();
    }
    if (threads != 1)
        return;
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    char *own = libc ? dlsym(libc, "__libc_single_threaded") : NULL;
    if (libc)
        dlclose(libc);
    if (!own)
        return;
    fz_setxid_handler_will_return();
    *own = 1;
    __libc_single_threaded = 1;
}

/* Fields nptl's allocate_stack/pthread_create would set. */
static void init_pthread_fields(void *tcb, struct fz_fiber *fiber)
{
    void *tp = fz_thread_pointer();
    AT(tcb, 0, void *) = tcb;
    AT(tcb, TCB_SELF, void *) = tcb;
    AT(tcb, TCB_MULTIPLE_THREADS, int) = 1;
    AT(tcb, TCB_SYSINFO, uintptr_t) = AT(tp, TCB_SYSINFO, uintptr_t);
    AT(tcb, TCB_STACK_GUARD, uintptr_t) = AT(tp, TCB_STACK_GUARD, uintptr_t);
    AT(tcb, TCB_POINTER_GUARD, uintptr_t) = AT(tp, TCB_POINTER_GUARD, uintptr_t);
    AT(tcb, TCB_FEATURE_1, unsigned) = AT(tp, TCB_FEATURE_1, unsigned);
    AT(tcb, L.tid, int) = fz_tls_fake_tid();
    void *robust_head = (char *)tcb + L.robust_head;
    AT(tcb, L.robust_prev, void *) = robust_head;
    AT(tcb, L.robust_head, void *) = robust_head;
    AT(tcb, L.robust_head + 8, long) = L.robust_futex_offset; /* as the main thread has */
    AT(tcb, L.robust_head + 16, void *) = NULL;
    AT(tcb, L.specific, void *) = (char *)tcb + L.specific_1stblock;
    /* nptl must never cache or free it */
    if (L.user_stack_size == 1)
        AT(tcb, L.user_stack, unsigned char) = (unsigned char)L.user_stack_value;
    else
        AT(tcb, L.user_stack, int) = L.user_stack_value;
    AT(tcb, L.start_routine, void *) = fiber ? (void *)fiber_tcb_marker : NULL;
    AT(tcb, L.arg, void *) = fiber;
    AT(tcb, L.resp, void *) = (char *)tcb + L.res;
    if (L.rseq_size)
        AT(tcb, L.rseq_offset + 4, int) = -2; /* RSEQ_CPU_ID_REGISTRATION_FAILED */
}

/* Bring a pooled TCB's module TLS back to the init images, the way nptl
 * re-initialises a cached stack (get_cached_stack): free the dynamic blocks,
 * clear the DTV, let ld.so rebuild it from its current slot list.  The DTV
 * may be several dlopen/dlclose generations old and its entries may name
 * modules since unloaded, whose ids now belong to others; only ld.so's slot
 * list says where each current module's block is (copying images through the
 * old DTV wrote a new static module's image into the smaller heap block the
 * DTV still held for an unloaded one, past its end: tls_dlclose).
 * libc's own block is kept on purpose (malloc's tcache and arena, which only
 * the unexported __libc_thread_freeres could release); its per-thread values
 * that a new thread sees are reset in fz_tls_exit and fz_tls_enter. */
static void reset_module_tls(void *tcb)
{
    union dtv_entry *dtv = AT(tcb, 8, union dtv_entry *);
    size_t slots = dtv[-1].counter;
    for (size_t i = 1; i <= slots; i++)
        free(dtv[i].pointer.to_free);
    memset(dtv, 0, (slots + 1) * sizeof *dtv);
    char *libc_block = (char *)tcb - L.libc_tls_offset;
    char saved[L.libc_tls_size];
    memcpy(saved, libc_block, L.libc_tls_size);
    L.allocate_tls_init(tcb, L.tls_init_thread_arg);
    memcpy(libc_block, saved, L.libc_tls_size);
}

/* The calling OS thread's TCB (the main thread's, or after a fork the
 * forking fiber's) becomes a fiber's, which may run on any carrier, while
 * the new idle TCB stays on this OS thread: hand the OS thread's identity to
 * the idle TCB.  The tid glibc compares and signals (set*id, runtime/setxid_glibc.c) moves
 * to it; the fiber gets a fake one like every fiber.  The kernel's rseq
 * registration of this OS thread points into the fiber's TCB and would
 * report this carrier's CPU to the fiber wherever it runs: unregister it
 * (glibc registers it with RSEQ_SIG); the fiber then
 * reads RSEQ_CPU_ID_REGISTRATION_FAILED like every fiber. */
static void move_os_thread_identity(void *idle_tcb)
{
    void *tp = fz_thread_pointer();
    int tid = (int)fz_sys0(SYS_gettid);
    AT(idle_tcb, L.tid, int) = tid;
    if (AT(tp, L.tid, int) != tid)
        return;
    AT(tp, L.tid, int) = fz_tls_fake_tid();
    /* glibc registered max(32, __rseq_size) bytes; unregistering needs the same */
    unsigned len = L.rseq_size < 32 ? 32 : L.rseq_size;
    if (L.rseq_size && fz_sys4(SYS_rseq, (char *)tp + L.rseq_offset, len,
                               1 /* RSEQ_FLAG_UNREGISTER */, 0x53053053 /* RSEQ_SIG */) == 0)
        AT(tp, L.rseq_offset + 4, int) = -2;
}

void *fz_tls_create(struct fz_fiber *fiber)
{
    if (fiber)
        fz_setxid_wrap_handler();
    void *tcb = L.allocate_tls(NULL);
    if (!tcb)
        return NULL;
    fz_libc_link_tcb(tcb);
    init_pthread_fields(tcb, fiber);
    if (!fiber)
        move_os_thread_identity(tcb);
    return tcb;
}

void fz_tls_recycle(void *tcb, struct fz_fiber *fiber)
{
    fz_setxid_wrap_handler();
    /* everything of struct pthread after the tid: cleanup buffers, cancel
     * state, keys, result, resolver state */
    void *getrandom_state = L.getrandom_buf >= 0 ? AT(tcb, L.getrandom_buf, void *) : NULL;
    memset((char *)tcb + L.robust_prev, 0, L.pd_size - (size_t)L.robust_prev);
    /* glibc 2.41+'s vDSO getrandom state goes back to its pool only in
     * start_thread's exit path: it stays with the TCB for the next fiber */
    if (L.getrandom_buf >= 0)
        AT(tcb, L.getrandom_buf, void *) = getrandom_state;
    reset_module_tls(tcb);
    init_pthread_fields(tcb, fiber);
}

/* Level-2 key arrays are malloc'd by pthread_setspecific for keys >= 32. */
static void free_key_blocks(void *tcb)
{
    void **specific = &AT(tcb, L.specific, void *);
    for (unsigned i = 1; i < L.keys_max / L.key_2nd_level; i++) {
        free(specific[i]);
        specific[i] = NULL;
    }
}

/* ld.so's record of the stack pointer at process entry */
extern void *__libc_stack_end;

/* glibc's answer is valid only below this RLIMIT_STACK: the kernel keeps
 * at least the limit's worth of address space below the stack free of
 * mmap (the gap is capped at 5/6 of the address space), so glibc's cut of
 * the size at the next mapping below never applies. */
#define MAIN_STACK_FAST_RLIMIT (1ull << 40)

/* glibc's pthread_getattr_np on the main thread: the top is the page above
 * __libc_stack_end, the size RLIMIT_STACK less what lies between that top
 * and the end of the stack's mapping (arguments, environment, auxv), page
 * aligned.  glibc finds the mapping's end in /proc/self/maps, which cost
 * fiberize's start-up 70-90 us (stdio, the kernel formatting every
 * mapping).  The kernel puts the exec'd file's name at the very top of
 * that mapping, one pointer below its end, and hands its address in
 * AT_EXECFN; mincore confirms the end (the last page mapped, the next
 * not).  Anything unusual (unlimited stack, the name elsewhere, something
 * mapped at the bottom) answers false: the caller asks glibc.
 * tests/bats/identity.bats compares both ways under five limits. */
bool fz_tls_main_stack(void **base, size_t *size, size_t *guard)
{
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    uintptr_t page = getauxval(AT_PAGESZ);
    struct rlimit rl;
    if (!execfn || !page || getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= MAIN_STACK_FAST_RLIMIT)
        return false;
    uintptr_t end = (uintptr_t)execfn + strlen(execfn) + 1 + sizeof(void *);
    uintptr_t top = ((uintptr_t)__libc_stack_end & -page) + page;
    if (end % page || end < top || end - top >= rl.rlim_cur)
        return false;
    unsigned char resident;
    if (fz_sys3(SYS_mincore, end - page, page, &resident) != 0 ||
        fz_sys3(SYS_mincore, end, page, &resident) != -ENOMEM)
        return false;
    uintptr_t bytes = (rl.rlim_cur - (end - top)) & -page;
    if (fz_sys3(SYS_mincore, top - bytes, page, &resident) != -ENOMEM)
        return false;
    *base = (void *)(top - bytes);
    *size = bytes;
    *guard = AT(fz_thread_pointer(), L.reported_guardsize, size_t);
    return true;
}

void fz_tls_adopt_main(struct fz_fiber *fiber)
{
    void *tp = fz_thread_pointer();
    AT(tp, L.start_routine, void *) = (void *)fiber_tcb_marker;
    AT(tp, L.arg, void *) = fiber;
}

void fz_tls_enter(void)
{
    L.ctype_init();
    uselocale(LC_GLOBAL_LOCALE);
    h_errno = 0;
    errno = 0;
}

/* What glibc's __libc_thread_freeres (not exported) releases at thread exit
 * and a recycled TCB would otherwise hand to the next fiber: a pending
 * dlerror message (the new thread's dlerror() would return it), the
 * strsignal/strerror_l buffers and the priority-protect data nptl frees
 * with the TCB (the recycling memset would leak them).
 * Not released: resolver state from res_init (memset at recycling; glibc
 * would free the addresses of IPv6 name servers). */
static void release_libc_thread_state(void)
{
    if (dlerror())
        (void)dlerror(); /* a delivered message is freed by the next call */
    char **buffers = &AT(fz_thread_pointer(), L.tls_state, char *);
    free(buffers[0]);
    free(buffers[1]);
    buffers[0] = buffers[1] = NULL;
    void **tpp = &AT(fz_thread_pointer(), L.tpp, void *);
    free(*tpp); /* glibc frees it with the thread's TCB */
    *tpp = NULL;
}

void fz_tls_exit(void)
{
    L.call_tls_dtors();
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
        bool ran = false;
        for (unsigned key = 0; key < L.keys_max; key++) {
            uintptr_t seq = L.keys[key].seq;
            void (*destr)(void *) = L.keys[key].destr;
            if (!(seq & 1) || !destr || fz_asan_owns_key(key))
                continue;
            void *value = pthread_getspecific(key);
            if (!value)
                continue;
            pthread_setspecific(key, NULL);
            destr(value);
            ran = true;
        }
        if (!ran)
            break;
    }
    free_key_blocks(fz_thread_pointer());
    release_libc_thread_state();
    fz_robust_release(fz_thread_pointer(), false);
}

void *fz_tcb_fiber(void *tcb)
{
    if (AT(tcb, L.start_routine, void *) != (void *)fiber_tcb_marker)
        return NULL;
    return AT(tcb, L.arg, void *);
}

void **fz_tcb_result_slot(void *tcb)
{
    return &AT(tcb, L.result, void *);
}

/* glibc's __sigsetjmp on the jmp_buf inside a __pthread_unwind_buf_t (the
 * unwind point pthread_exit and cancellation longjmp to, as in nptl's
 * start_thread).  Declared by its symbol: the public prototype wants a full
 * sigjmp_buf, which that buffer is not (the signal mask is never saved). */
extern int unwind_setjmp(void *cancel_jmp_buf, int savemask) __asm__("__sigsetjmp")
    __attribute__((returns_twice, nothrow));

void fz_tls_run_body(void *tcb, void *(*body)(void *), void *arg)
{
    /* glibc's pthread_exit and cancellation unwind to this buffer, as they
     * would to the one in nptl's start_thread */
    __pthread_unwind_buf_t unwind;
    memset(&unwind, 0, sizeof unwind);
    AT(tcb, L.cleanup_jmp_buf, void *) = &unwind;
    if (!unwind_setjmp(unwind.__cancel_jmp_buf, 0))
        AT(tcb, L.result, void *) = body(arg);
}

void fz_tls_thread_exit(void *value, void (*libc_exit)(void *))
{
    libc_exit(value); /* unwinds to fz_tls_run_body's buffer */
    __builtin_unreachable();
}

void fz_tls_key_created(unsigned key, void (*destructor)(void *))
{
    (void)key, (void)destructor; /* glibc's __pthread_keys is read at exit */
}

void fz_tls_key_deleted(unsigned key)
{
    (void)key; /* glibc compares sequence numbers: stale values read as NULL */
}

void fz_tls_modules_changed(void)
{
    /* ld.so's own slot list and __tls_get_addr's generation check cover fibers */
}

void fz_tcb_set_stack(void *tcb, void *base, size_t size, size_t guard)
{
    AT(tcb, L.stackblock, void *) = (char *)base - guard;
    AT(tcb, L.stackblock_size, size_t) = size + guard;
    AT(tcb, L.guardsize, size_t) = guard;
    AT(tcb, L.reported_guardsize, size_t) = guard;
}

struct fz_fiber *fz_tls_current_fiber(void)
{
    void *marker, *arg;
    __asm__ volatile("mov %%fs:(%1), %0" : "=r"(marker) : "r"(L.start_routine));
    if (marker != (void *)fiber_tcb_marker)
        return NULL;
    __asm__ volatile("mov %%fs:(%1), %0" : "=r"(arg) : "r"(L.arg));
    return arg;
}

pid_t fz_tls_mutex_holder(const void *word, bool (*read)(const void *, void *, size_t))
{
    int owner; /* __owner, after __lock and __count */
    return read((const char *)word + 8, &owner, sizeof owner) ? owner : 0;
}

pid_t fz_tcb_tid(void *tcb)
{
    return AT(tcb, L.tid, int);
}

/* ---- cancellation ------------------------------------------------------
 * glibc's cancelhandling bits (nptl/descr.h, 2.34 to 2.42): canceled (3),
 * exiting (4); since 2.36 also the state (bit 0, 1 = disabled), which 2.34
 * and 2.35 keep in a byte of its own (L.cancelstate, found by libc_glibc.c;
 * PTHREAD_CANCEL_DISABLE there). */
enum { CANCEL_DISABLED = 1 << 0, CANCEL_REQUESTED = 1 << 3, CANCEL_EXITING = 1 << 4 };

static bool cancel_disabled(void *tcb, int handling)
{
    if (L.cancelstate < 0)
        return handling & CANCEL_DISABLED;
    return __atomic_load_n(&AT(tcb, L.cancelstate, unsigned char), __ATOMIC_RELAXED) ==
           PTHREAD_CANCEL_DISABLE;
}

bool fz_tcb_cancel_pending(void *tcb)
{
    int h = __atomic_load_n(&AT(tcb, L.cancelhandling, int), __ATOMIC_ACQUIRE);
    return (h & (CANCEL_REQUESTED | CANCEL_EXITING)) == CANCEL_REQUESTED &&
           !cancel_disabled(tcb, h);
}

bool fz_tcb_request_cancel(void *tcb)
{
    int h = __atomic_fetch_or(&AT(tcb, L.cancelhandling, int), CANCEL_REQUESTED, __ATOMIC_ACQ_REL);
    return !(h & CANCEL_EXITING) && !cancel_disabled(tcb, h);
}
