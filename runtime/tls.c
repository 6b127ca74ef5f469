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
 *    receiving thread's tid, see below) [tls_setxid].
 * Not guaranteed:
 *  - gettid()/syscall(SYS_gettid) name the carrier and change on migration;
 *    glibc calls that hand pd->tid to the kernel (affinity, sched params,
 *    pthread_kill, pthread_sigqueue, pthread_getcpuclockid, names, async
 *    cancel) see the fake tid -- the main fiber's too -- and must be
 *    interposed; robust and PI mutexes through the real glibc (the kernel
 *    knows only carrier tids and walks only carriers' robust lists: robust
 *    mutexes are marked owner-dead here at fiber and process exit, not when
 *    a signal kills the process);
 *  - sigaltstack is per OS thread; signal masks are not in the TCB (the
 *    runtime keeps them per fiber elsewhere);
 *  - a signal handler runs on the TCB its carrier has loaded: the fiber it
 *    interrupted, or, on an idle carrier, whichever TCB the scheduler left
 *    loaded [tls_signal catches a handler on the TLS of a fiber running
 *    elsewhere];
 *  - libraries that use rseq themselves see cpu_id -2 and must fall back;
 *  - resolver state from res_init is dropped at recycling without glibc's
 *    res_nclose (IPv6 name-server addresses leak); sunrpc per-thread state
 *    and inet_ntoa's buffer stay with the recycled TCB;
 *  - a thread glibc creates itself (timer SIGEV_THREAD, aio) after the last
 *    fiber creation may run glibc's unwrapped SIGSETXID handler (see below);
 *  - stacks of fibers are not made executable by a later dlopen of an
 *    exec-stack library (_dl_make_stacks_executable walks only
 *    GL(dl_stack_used)).
 *
 * The library itself has no TLS segment: a __thread variable in it would be
 * per fiber, not per carrier [tls.bats checks with readelf].
 *
 * Layout: the offsets below are glibc 2.36 x86_64's.  fz_tls_setup checks
 * them against the _thread_db_* descriptors libc exports, the robust list,
 * __rseq_offset, the strsignal buffer of the main thread and libc's TLS
 * block, and refuses any other glibc.
 *
 * Threads: fz_tls_create/recycle/exit call libc and run on the fiber that
 * creates or exits; recycling is driven by the fiber pool (runtime/fiber.c),
 * which keeps each TCB paired with its fiber for life.  setxid_on_own_tcb
 * runs in signal context on any OS thread: raw syscalls and list reads
 * only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <locale.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/single_threaded.h>
#include <asm/prctl.h>
#include "runtime/asan.h"
#include "runtime/tls.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

/* struct pthread, glibc 2.36 x86_64 */
enum {
    PD_SIZE = 2368,
    PD_HEADER_SELF = 0x10,
    PD_MULTIPLE_THREADS = 0x18,
    PD_SYSINFO = 0x20,
    PD_STACK_GUARD = 0x28,
    PD_POINTER_GUARD = 0x30,
    PD_FEATURE_1 = 0x48,
    PD_LIST = 704,
    PD_TID = 720,
    PD_ROBUST_PREV = 728,
    PD_ROBUST_HEAD = 736,
    PD_CLEANUP_JMP_BUF = 768,
    PD_CANCELHANDLING = 776,
    PD_SPECIFIC_1STBLOCK = 784,
    PD_SPECIFIC = 1296,
    PD_SPECIFIC_USED = 1552,
    PD_REPORT_EVENTS = 1553,
    PD_USER_STACK = 1554,
    PD_RESULT = 1576,
    PD_SCHEDPARAM = 1584,
    PD_SCHEDPOLICY = 1588,
    PD_START_ROUTINE = 1592,
    PD_ARG = 1600,
    PD_STACKBLOCK = 1680,
    PD_STACKBLOCK_SIZE = 1688,
    PD_GUARDSIZE = 1696,
    PD_REPORTED_GUARDSIZE = 1704,
    PD_TPP = 1712, /* priority-protect bookkeeping (malloc'd on first use) */
    PD_RES = 1720,
    PD_TLS_STATE = 2304, /* strsignal and strerror_l buffers (malloc'd) */
    PD_KEYS = 1024,
    PD_KEY_2ND = 32,
    PD_KEY_1ST = 32,
};
/* _rtld_global, ld.so 2.36 */
enum {
    RTLD_DL_STACK_USED = 0x10a8,
    RTLD_DL_STACK_USER = 0x10b8,
    RTLD_DL_STACK_CACHE_LOCK = 0x10e8,
};
/* glibc's internal signal for the set*id broadcast (SIGRTMIN + 1) */
enum { SIGSETXID = 33 };

#define AT(tcb, off, type) (*(type *)((char *)(tcb) + (off)))

struct list_node {
    struct list_node *next, *prev;
};
struct key_slot {
    uintptr_t seq;
    void (*destr)(void *);
};
struct key_data {
    uintptr_t seq;
    void *data;
};

/* One DTV entry (ld.so's dtv_t); dtv[-1].counter is the number of module
 * slots, dtv[0].counter the generation the DTV is current with. */
union dtv_entry {
    size_t counter;
    struct {
        void *val, *to_free;
    } pointer;
};

static struct {
    void *(*allocate_tls)(void *);
    void *(*allocate_tls_init)(void *, bool);
    void (*deallocate_tls)(void *, bool);
    void (*ctype_init)(void);
    void (*call_tls_dtors)(void);
    struct key_slot *keys;
    char *rtld_global;
    ptrdiff_t resp_offset; /* __resp relative to the thread pointer */
    ptrdiff_t rseq_offset;
    unsigned rseq_size;
    bool wrfsbase;
    ptrdiff_t libc_tls_offset; /* libc's static TLS block: tcb - offset */
    size_t libc_tls_size;
} g;

#define FAKE_TID_BASE 0x20000000u
static atomic_uint next_fake_tid;

/* The marker that tells a fiber's TCB from a native thread's: native threads
 * keep their start routine in the same field. */
static void fiber_tcb_marker(void) {}

static bool check_db(const char *name, uint32_t offset)
{
    const uint32_t *d = dlsym(RTLD_DEFAULT, name);
    return d && d[2] == offset;
}

static bool check_layout(const char **why)
{
    const uint32_t *size = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    if (!size || *size != PD_SIZE)
        return *why = "struct pthread size differs", false;
    if (!check_db("_thread_db_pthread_list", PD_LIST) ||
        !check_db("_thread_db_pthread_tid", PD_TID) ||
        !check_db("_thread_db_pthread_cancelhandling", PD_CANCELHANDLING) ||
        !check_db("_thread_db_pthread_specific", PD_SPECIFIC) ||
        !check_db("_thread_db_pthread_report_events", PD_REPORT_EVENTS) ||
        !check_db("_thread_db_pthread_start_routine", PD_START_ROUTINE) ||
        !check_db("_thread_db_pthread_schedpolicy", PD_SCHEDPOLICY))
        return *why = "struct pthread field offsets differ", false;
    void *tp = fz_thread_pointer();
    void *robust = NULL;
    size_t len;
    if (fz_sys3(SYS_get_robust_list, 0, &robust, &len) != 0 ||
        robust != (char *)tp + PD_ROBUST_HEAD)
        return *why = "robust list is not where expected", false;
    if (g.rseq_size && g.rseq_offset != 2336)
        return *why = "rseq area is not where expected", false;
    /* the main thread must be on GL(dl_stack_user) */
    struct list_node *head = (struct list_node *)(g.rtld_global + RTLD_DL_STACK_USER);
    struct list_node *n = &AT(tp, PD_LIST, struct list_node);
    bool found = false;
    for (int i = 0; i < 64 && n; i++, n = n->next)
        if (n == head) {
            found = true;
            break;
        }
    if (!found)
        return *why = "dl_stack_user is not where expected", false;
    /* strsignal keeps its buffer in struct pthread's tls_state; a buffer
     * made here stays the main thread's, as if main had asked. */
    if (strsignal(4095) != AT(tp, PD_TLS_STATE, char *))
        return *why = "tls_state is not where expected", false;
    if (!g.libc_tls_size)
        return *why = "libc's TLS block not found", false;
    return true;
}

/* Where libc's static TLS block is (the same offset below every TCB). */
static int find_libc_tls(struct dl_phdr_info *info, size_t size, void *tp)
{
    (void)size;
    if (!info->dlpi_tls_modid || !info->dlpi_tls_data || !strstr(info->dlpi_name, "/libc.so.6"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            g.libc_tls_offset = (char *)tp - (char *)info->dlpi_tls_data;
            g.libc_tls_size = info->dlpi_phdr[i].p_memsz;
        }
    return 1;
}

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

struct kernel_sigaction {
    void (*handler)(int, siginfo_t *, void *);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};
static struct kernel_sigaction glibc_setxid;
static atomic_int setxid_state; /* 0 not yet, 1 being installed, 2 done */

/* Every TCB ld.so knows (nptl's threads, and fibers, linked as user-stack
 * threads): the first for which pick(tcb, arg) is true, or NULL. */
static void *find_tcb(bool (*pick)(void *tcb, void *arg), void *arg)
{
    static const unsigned lists[] = {RTLD_DL_STACK_USED, RTLD_DL_STACK_USER};
    for (int l = 0; l < 2; l++) {
        struct list_node *head = (struct list_node *)(g.rtld_global + lists[l]);
        for (struct list_node *n = head->next; n && n != head; n = n->next) {
            void *tcb = (char *)n - PD_LIST;
            if (pick(tcb, arg))
                return tcb;
        }
    }
    return NULL;
}

static bool has_tid(void *tcb, void *tid)
{
    return AT(tcb, PD_TID, int) == *(int *)tid;
}

static void *tcb_with_tid(int tid)
{
    return find_tcb(has_tid, &tid);
}

static void setxid_on_own_tcb(int sig, siginfo_t *info, void *uctx)
{
    void *loaded = fz_thread_pointer();
    int tid = (int)fz_sys0(SYS_gettid);
    void *own = AT(loaded, PD_TID, int) == tid ? loaded : tcb_with_tid(tid);
    if (own && own != loaded)
        fz_set_thread_pointer(own);
    glibc_setxid.handler(sig, info, uctx);
    if (own && own != loaded)
        fz_set_thread_pointer(loaded); /* not part of the signal frame */
}

static void wrap_setxid_handler(void)
{
    if (atomic_load_explicit(&setxid_state, memory_order_relaxed) == 2 || __libc_single_threaded)
        return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&setxid_state, &expected, 1))
        return; /* another creator is at it */
    struct kernel_sigaction wrapped;
    if (fz_sys4(SYS_rt_sigaction, SIGSETXID, NULL, &glibc_setxid, 8) == 0 &&
        (glibc_setxid.flags & SA_SIGINFO) && glibc_setxid.handler != setxid_on_own_tcb) {
        wrapped = glibc_setxid;
        wrapped.handler = setxid_on_own_tcb;
        fz_sys4(SYS_rt_sigaction, SIGSETXID, &wrapped, NULL, 8);
    }
    atomic_store(&setxid_state, 2);
}

void fz_tls_threads_started(void)
{
    wrap_setxid_handler();
}

bool fz_tls_setup(const char **why)
{
    if (strcmp(gnu_get_libc_version(), "2.36") != 0)
        return *why = "only glibc 2.36 is supported by this build", false;
    g.allocate_tls = dlsym(RTLD_DEFAULT, "_dl_allocate_tls");
    g.allocate_tls_init = dlsym(RTLD_DEFAULT, "_dl_allocate_tls_init");
    g.deallocate_tls = dlsym(RTLD_DEFAULT, "_dl_deallocate_tls");
    g.ctype_init = dlsym(RTLD_DEFAULT, "__ctype_init");
    g.call_tls_dtors = dlsym(RTLD_DEFAULT, "__call_tls_dtors");
    g.keys = dlsym(RTLD_DEFAULT, "__pthread_keys");
    g.rtld_global = dlsym(RTLD_DEFAULT, "_rtld_global");
    void **resp = dlsym(RTLD_DEFAULT, "__resp");
    ptrdiff_t *rseq_off = dlsym(RTLD_DEFAULT, "__rseq_offset");
    unsigned *rseq_size = dlsym(RTLD_DEFAULT, "__rseq_size");
    if (!g.allocate_tls || !g.allocate_tls_init || !g.deallocate_tls || !g.ctype_init ||
        !g.call_tls_dtors || !g.keys || !g.rtld_global || !resp || !rseq_off || !rseq_size)
        return *why = "glibc internals not found", false;
    g.resp_offset = (char *)resp - (char *)fz_thread_pointer();
    g.rseq_offset = *rseq_off;
    g.rseq_size = *rseq_size;
    g.wrfsbase = (getauxval(AT_HWCAP2) & 2) != 0; /* HWCAP2_FSGSBASE */
    atomic_init(&next_fake_tid, 0);
    dl_iterate_phdr(find_libc_tls, fz_thread_pointer());
    return check_layout(why);
}

void fz_set_thread_pointer(void *tcb)
{
    if (g.wrfsbase)
        __asm__ volatile("wrfsbase %0" ::"r"(tcb) : "memory");
    else
        fz_sys2(SYS_arch_prctl, ARCH_SET_FS, tcb);
}

/* GL(dl_stack_cache_lock): glibc's lll protocol (0 free, 1 taken, 2 waiters).
 * The try takes it only if it comes free within `spins` tries. */
static bool stack_list_trylock(unsigned spins)
{
    atomic_int *l = (atomic_int *)(g.rtld_global + RTLD_DL_STACK_CACHE_LOCK);
    for (unsigned i = 0; i < spins; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(l, &expected, 1))
            return true;
        fz_cpu_relax();
    }
    return false;
}

static void stack_list_lock(void)
{
    if (stack_list_trylock(1))
        return;
    atomic_int *l = (atomic_int *)(g.rtld_global + RTLD_DL_STACK_CACHE_LOCK);
    while (atomic_exchange(l, 2) != 0)
        fz_sys4(SYS_futex, l, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, 0);
}

static void stack_list_unlock(void)
{
    atomic_int *l = (atomic_int *)(g.rtld_global + RTLD_DL_STACK_CACHE_LOCK);
    if (atomic_exchange(l, 0) == 2)
        fz_futex_wake(l, 1);
}

static void link_on_stack_user(void *tcb)
{
    struct list_node *head = (struct list_node *)(g.rtld_global + RTLD_DL_STACK_USER);
    struct list_node *n = &AT(tcb, PD_LIST, struct list_node);
    stack_list_lock();
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    atomic_thread_fence(memory_order_release);
    head->next = n;
    stack_list_unlock();
}

static int fake_tid(void)
{
    unsigned n = atomic_fetch_add(&next_fake_tid, 1);
    return (int)(FAKE_TID_BASE + (n % 0x1f000000u));
}

/* Fields nptl's allocate_stack/pthread_create would set. */
static void init_pthread_fields(void *tcb, struct fz_fiber *fiber)
{
    void *tp = fz_thread_pointer();
    AT(tcb, 0, void *) = tcb;
    AT(tcb, PD_HEADER_SELF, void *) = tcb;
    AT(tcb, PD_MULTIPLE_THREADS, int) = 1;
    AT(tcb, PD_SYSINFO, uintptr_t) = AT(tp, PD_SYSINFO, uintptr_t);
    AT(tcb, PD_STACK_GUARD, uintptr_t) = AT(tp, PD_STACK_GUARD, uintptr_t);
    AT(tcb, PD_POINTER_GUARD, uintptr_t) = AT(tp, PD_POINTER_GUARD, uintptr_t);
    AT(tcb, PD_FEATURE_1, unsigned) = AT(tp, PD_FEATURE_1, unsigned);
    AT(tcb, PD_TID, int) = fake_tid();
    void *robust_head = (char *)tcb + PD_ROBUST_HEAD;
    AT(tcb, PD_ROBUST_PREV, void *) = robust_head;
    AT(tcb, PD_ROBUST_HEAD, void *) = robust_head;
    AT(tcb, PD_ROBUST_HEAD + 8, long) = -32; /* futex_offset, as the main thread has */
    AT(tcb, PD_ROBUST_HEAD + 16, void *) = NULL;
    AT(tcb, PD_SPECIFIC, void *) = (char *)tcb + PD_SPECIFIC_1STBLOCK;
    AT(tcb, PD_USER_STACK, bool) = true; /* nptl must never cache or free it */
    AT(tcb, PD_START_ROUTINE, void *) = fiber ? (void *)fiber_tcb_marker : NULL;
    AT(tcb, PD_ARG, void *) = fiber;
    AT(tcb, g.resp_offset, void *) = (char *)tcb + PD_RES;
    if (g.rseq_size)
        AT(tcb, g.rseq_offset + 4, int) = -2; /* RSEQ_CPU_ID_REGISTRATION_FAILED */
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
    char *libc_block = (char *)tcb - g.libc_tls_offset;
    char saved[g.libc_tls_size];
    memcpy(saved, libc_block, g.libc_tls_size);
    g.allocate_tls_init(tcb, true);
    memcpy(libc_block, saved, g.libc_tls_size);
}

/* The calling OS thread's TCB (the main thread's, or after a fork the
 * forking fiber's) becomes a fiber's, which may run on any carrier, while
 * the new idle TCB stays on this OS thread: hand the OS thread's identity to
 * the idle TCB.  The tid glibc compares and signals (set*id, see above) moves
 * to it; the fiber gets a fake one like every fiber.  The kernel's rseq
 * registration of this OS thread points into the fiber's TCB and would
 * report this carrier's CPU to the fiber wherever it runs: unregister it
 * (glibc registers the whole 32-byte area with RSEQ_SIG); the fiber then
 * reads RSEQ_CPU_ID_REGISTRATION_FAILED like every fiber. */
static void move_os_thread_identity(void *idle_tcb)
{
    void *tp = fz_thread_pointer();
    int tid = (int)fz_sys0(SYS_gettid);
    AT(idle_tcb, PD_TID, int) = tid;
    if (AT(tp, PD_TID, int) != tid)
        return;
    AT(tp, PD_TID, int) = fake_tid();
    if (g.rseq_size && fz_sys4(SYS_rseq, (char *)tp + g.rseq_offset, 32,
                               1 /* RSEQ_FLAG_UNREGISTER */, 0x53053053 /* RSEQ_SIG */) == 0)
        AT(tp, g.rseq_offset + 4, int) = -2;
}

void *fz_tls_create(struct fz_fiber *fiber)
{
    if (fiber)
        wrap_setxid_handler();
    void *tcb = g.allocate_tls(NULL);
    if (!tcb)
        return NULL;
    link_on_stack_user(tcb);
    init_pthread_fields(tcb, fiber);
    if (!fiber)
        move_os_thread_identity(tcb);
    return tcb;
}

void fz_tls_recycle(void *tcb, struct fz_fiber *fiber)
{
    wrap_setxid_handler();
    /* everything of struct pthread after the tid: cleanup buffers, cancel
     * state, keys, result, resolver state */
    memset((char *)tcb + PD_ROBUST_PREV, 0, PD_SIZE - PD_ROBUST_PREV);
    reset_module_tls(tcb);
    init_pthread_fields(tcb, fiber);
}

/* Level-2 key arrays are malloc'd by pthread_setspecific for keys >= 32. */
static void free_key_blocks(void *tcb)
{
    void **specific = &AT(tcb, PD_SPECIFIC, void *);
    for (int i = 1; i < PD_KEYS / PD_KEY_2ND; i++) {
        free(specific[i]);
        specific[i] = NULL;
    }
}

void fz_tls_adopt_main(struct fz_fiber *fiber)
{
    void *tp = fz_thread_pointer();
    AT(tp, PD_START_ROUTINE, void *) = (void *)fiber_tcb_marker;
    AT(tp, PD_ARG, void *) = fiber;
}

void fz_tls_enter(void)
{
    g.ctype_init();
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
    char **buffers = &AT(fz_thread_pointer(), PD_TLS_STATE, char *);
    free(buffers[0]);
    free(buffers[1]);
    buffers[0] = buffers[1] = NULL;
    void **tpp = &AT(fz_thread_pointer(), PD_TPP, void *);
    free(*tpp); /* glibc frees it with the thread's TCB */
    *tpp = NULL;
}

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
static void release_robust_mutexes(void *tcb, bool shared_only)
{
    char *head = (char *)tcb + PD_ROBUST_HEAD;
    long futex_offset = AT(tcb, PD_ROBUST_HEAD + 8, long);
    uintptr_t pending_entry = AT(tcb, PD_ROBUST_HEAD + 16, uintptr_t);
    uintptr_t pending = pending_entry & ~(uintptr_t)1;
    int tid = AT(tcb, PD_TID, int);
    const long kind_offset = offsetof(pthread_mutex_t, __data.__kind);
    unsigned limit = 2048; /* the kernel's ROBUST_LIST_LIMIT: a cycle ends */
    uintptr_t entry = AT(tcb, PD_ROBUST_HEAD, uintptr_t);
    while (entry && (char *)(entry & ~(uintptr_t)1) != head && limit--) {
        char *node = (char *)(entry & ~(uintptr_t)1);
        int *word = (int *)(node + futex_offset);
        uintptr_t next = *(uintptr_t *)node;
        bool shared = AT(word, kind_offset, int) & 128; /* glibc's pshared kind bit */
        if ((uintptr_t)node != pending && (shared || !shared_only))
            mark_owner_died(word, tid, false, entry & 1);
        entry = next;
    }
    if (pending && !shared_only)
        mark_owner_died((int *)(pending + futex_offset), tid, true, pending_entry & 1);
    if (shared_only)
        return;
    AT(tcb, PD_ROBUST_HEAD, void *) = head;
    AT(tcb, PD_ROBUST_PREV, void *) = head;
    AT(tcb, PD_ROBUST_HEAD + 16, void *) = NULL;
}

static bool release_if_fiber(void *tcb, void *unused)
{
    (void)unused;
    if (AT(tcb, PD_TID, int) >= (int)FAKE_TID_BASE) /* fibers' only */
        release_robust_mutexes(tcb, true);
    return false; /* on to the next */
}

void fz_tls_process_exit(void)
{
    /* The lists change as fibers come and go on other carriers.  _exit may
     * be called from a handler that interrupted this thread while it held
     * the lock: give up after a few ms rather than wait forever. */
    if (!g.rtld_global || !stack_list_trylock(100000))
        return;
    find_tcb(release_if_fiber, NULL);
    stack_list_unlock();
}

void fz_tls_exit(void)
{
    g.call_tls_dtors();
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
        bool ran = false;
        for (unsigned key = 0; key < PD_KEYS; key++) {
            uintptr_t seq = g.keys[key].seq;
            void (*destr)(void *) = g.keys[key].destr;
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
    release_robust_mutexes(fz_thread_pointer(), false);
}

void *fz_tcb_fiber(void *tcb)
{
    if (AT(tcb, PD_START_ROUTINE, void *) != (void *)fiber_tcb_marker)
        return NULL;
    return AT(tcb, PD_ARG, void *);
}

void **fz_tcb_result_slot(void *tcb)
{
    return &AT(tcb, PD_RESULT, void *);
}

void fz_tcb_set_unwind_buf(void *tcb, void *buf)
{
    AT(tcb, PD_CLEANUP_JMP_BUF, void *) = buf;
}

void fz_tcb_set_stack(void *tcb, void *base, size_t size, size_t guard)
{
    AT(tcb, PD_STACKBLOCK, void *) = (char *)base - guard;
    AT(tcb, PD_STACKBLOCK_SIZE, size_t) = size + guard;
    AT(tcb, PD_GUARDSIZE, size_t) = guard;
    AT(tcb, PD_REPORTED_GUARDSIZE, size_t) = guard;
}

struct fz_fiber *fz_tls_current_fiber(void)
{
    void *marker, *arg;
    __asm__ volatile("mov %%fs:%c1, %0" : "=r"(marker) : "i"(PD_START_ROUTINE));
    if (marker != (void *)fiber_tcb_marker)
        return NULL;
    __asm__ volatile("mov %%fs:%c1, %0" : "=r"(arg) : "i"(PD_ARG));
    return arg;
}

/* The tid glibc keeps in the loaded TCB: a fiber's fake unique tid, or an OS
 * thread's real one.  Mutex owners are recorded with it, as glibc does. */
pid_t fz_tcb_current_tid(void)
{
    int tid;
    __asm__ volatile("mov %%fs:%c1, %0" : "=r"(tid) : "i"(PD_TID));
    return tid;
}

/* The tid recorded in any TCB (dumps name mutex owners by it). */
pid_t fz_tcb_tid(void *tcb)
{
    return AT(tcb, PD_TID, int);
}

void fz_tcb_set_current_tid(pid_t tid)
{
    __asm__ volatile("mov %0, %%fs:%c1" : : "r"(tid), "i"(PD_TID) : "memory");
}

/* ---- cancellation ------------------------------------------------------
 * glibc 2.36's cancelhandling bits (nptl/descr.h): state (1 = disabled),
 * type (1 = asynchronous), canceling, canceled, exiting. */
enum { CANCEL_DISABLED = 1 << 0, CANCEL_REQUESTED = 1 << 3, CANCEL_EXITING = 1 << 4 };

bool fz_tcb_cancel_pending(void *tcb)
{
    int h = __atomic_load_n(&AT(tcb, PD_CANCELHANDLING, int), __ATOMIC_ACQUIRE);
    return (h & (CANCEL_REQUESTED | CANCEL_DISABLED | CANCEL_EXITING)) == CANCEL_REQUESTED;
}

bool fz_tcb_request_cancel(void *tcb)
{
    int h = __atomic_fetch_or(&AT(tcb, PD_CANCELHANDLING, int), CANCEL_REQUESTED, __ATOMIC_ACQ_REL);
    return !(h & (CANCEL_DISABLED | CANCEL_EXITING));
}
