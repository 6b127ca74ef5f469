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
 * What the design guarantees, for fibers:
 *  - every module's TLS starts from its init image (exe, libraries, and
 *    libraries dlopen'ed later: GD/TLSDESC lazily through __tls_get_addr,
 *    initial-exec through _dl_init_static_tls, because fiber TCBs are linked
 *    on GL(dl_stack_user) like user-stack threads);
 *  - own errno, pthread_self() (== TCB), pthread keys, resolver state,
 *    ctype tables, locale (reset to the global one), C++ thread_local
 *    destructors and key destructors at exit;
 *  - a unique fake tid (0x20000000 + n, above PID_MAX_LIMIT) so glibc's
 *    owner checks (recursive/errorcheck mutexes, rwlock writer) tell fibers
 *    apart; calls that hand a tid to the kernel must be interposed;
 *  - stack canary and pointer guard copied from the creating thread (they
 *    are process-wide values);
 *  - rseq: cpu_id = RSEQ_CPU_ID_REGISTRATION_FAILED so sched_getcpu() falls
 *    back to the vDSO instead of reading a stale copy;
 *  - malloc: the tcache and arena binding of libc's TLS are kept when a TCB
 *    is recycled, so short-lived fibers do not leak them (glibc frees them in
 *    __libc_thread_freeres, which is not exported).
 * Not guaranteed: robust and PI mutexes through the real glibc (the kernel
 * knows only carrier tids), per-fiber signal masks and sigaltstack, gettid()
 * through a raw syscall.
 *
 * Layout: the offsets below are glibc 2.36 x86_64's.  fz_tls_setup checks
 * them against the _thread_db_* descriptors libc exports, the robust list
 * and __rseq_offset of the main thread, and refuses any other glibc.
 *
 * Threads: fz_tls_create/recycle/exit call libc and run on the fiber that
 * creates or exits; recycling is driven by the fiber pool (runtime/fiber.c),
 * which keeps each TCB paired with its fiber for life.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <locale.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <asm/prctl.h>
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
    PD_RES = 1720,
    PD_KEYS = 1024,
    PD_KEY_2ND = 32,
    PD_KEY_1ST = 32,
};
/* _rtld_global, ld.so 2.36 */
enum { RTLD_DL_STACK_USER = 0x10b8, RTLD_DL_STACK_CACHE_LOCK = 0x10e8 };

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

static struct {
    void *(*allocate_tls)(void *);
    void (*deallocate_tls)(void *, bool);
    void (*ctype_init)(void);
    void (*call_tls_dtors)(void);
    struct key_slot *keys;
    char *rtld_global;
    ptrdiff_t resp_offset; /* __resp relative to the thread pointer */
    ptrdiff_t rseq_offset;
    unsigned rseq_size;
    bool wrfsbase;
    void *libc_tls_image; /* identifies libc's module when re-initialising */
} g;

static atomic_uint next_fake_tid;

/* The marker that tells a fiber's TCB from a native thread's: native threads
 * keep their start routine in the same field. */
static void fiber_tcb_marker(void)
{
}

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
    return true;
}

bool fz_tls_setup(const char **why)
{
    if (strcmp(gnu_get_libc_version(), "2.36") != 0)
        return *why = "only glibc 2.36 is supported by this build", false;
    g.allocate_tls = dlsym(RTLD_DEFAULT, "_dl_allocate_tls");
    g.deallocate_tls = dlsym(RTLD_DEFAULT, "_dl_deallocate_tls");
    g.ctype_init = dlsym(RTLD_DEFAULT, "__ctype_init");
    g.call_tls_dtors = dlsym(RTLD_DEFAULT, "__call_tls_dtors");
    g.keys = dlsym(RTLD_DEFAULT, "__pthread_keys");
    g.rtld_global = dlsym(RTLD_DEFAULT, "_rtld_global");
    void **resp = dlsym(RTLD_DEFAULT, "__resp");
    ptrdiff_t *rseq_off = dlsym(RTLD_DEFAULT, "__rseq_offset");
    unsigned *rseq_size = dlsym(RTLD_DEFAULT, "__rseq_size");
    if (!g.allocate_tls || !g.deallocate_tls || !g.ctype_init || !g.call_tls_dtors || !g.keys ||
        !g.rtld_global || !resp || !rseq_off || !rseq_size)
        return *why = "glibc internals not found", false;
    g.resp_offset = (char *)resp - (char *)fz_thread_pointer();
    g.rseq_offset = *rseq_off;
    g.rseq_size = *rseq_size;
    g.wrfsbase = (getauxval(AT_HWCAP2) & 2) != 0; /* HWCAP2_FSGSBASE */
    atomic_init(&next_fake_tid, 0);
    return check_layout(why);
}

void fz_set_thread_pointer(void *tcb)
{
    if (g.wrfsbase)
        __asm__ volatile("wrfsbase %0" ::"r"(tcb) : "memory");
    else
        fz_sys2(SYS_arch_prctl, ARCH_SET_FS, tcb);
}

/* GL(dl_stack_cache_lock): glibc's lll protocol (0 free, 1 taken, 2 waiters). */
static void stack_list_lock(void)
{
    atomic_int *l = (atomic_int *)(g.rtld_global + RTLD_DL_STACK_CACHE_LOCK);
    int expected = 0;
    if (atomic_compare_exchange_strong(l, &expected, 1))
        return;
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
    unsigned n = atomic_fetch_add(&next_fake_tid, 1);
    AT(tcb, PD_TID, int) = (int)(0x20000000u + (n % 0x1f000000u));
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

/* Reset a pooled TCB's non-libc TLS to the modules' init images.  libc's own
 * block is kept on purpose (tcache, arena); its per-thread values that
 * matter are reset in fz_tls_enter. */
static int reset_module_tls(struct dl_phdr_info *info, size_t size, void *tcb)
{
    (void)size;
    if (!info->dlpi_tls_modid || strstr(info->dlpi_name, "/libc.so.6"))
        return 0;
    const ElfW(Phdr) *tls = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS)
            tls = &info->dlpi_phdr[i];
    if (!tls)
        return 0;
    struct {
        void *val, *to_free;
    } *dtv = AT(tcb, 8, void *);
    if ((size_t)info->dlpi_tls_modid > (size_t)((uintptr_t *)dtv)[-2]) /* dtv[-1].counter */
        return 0;
    char *block = dtv[info->dlpi_tls_modid].val;
    if (!block || block == (char *)-1)
        return 0;
    memcpy(block, (char *)info->dlpi_addr + tls->p_vaddr, tls->p_filesz);
    memset(block + tls->p_filesz, 0, tls->p_memsz - tls->p_filesz);
    return 0;
}

void *fz_tls_create(struct fz_fiber *fiber)
{
    void *tcb = g.allocate_tls(NULL);
    if (!tcb)
        return NULL;
    link_on_stack_user(tcb);
    init_pthread_fields(tcb, fiber);
    return tcb;
}

void fz_tls_recycle(void *tcb, struct fz_fiber *fiber)
{
    /* everything of struct pthread after the tid: cleanup buffers, cancel
     * state, keys, result, resolver state */
    memset((char *)tcb + PD_ROBUST_PREV, 0, PD_SIZE - PD_ROBUST_PREV);
    dl_iterate_phdr(reset_module_tls, tcb);
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
    errno = 0;
}

void fz_tls_exit(void)
{
    g.call_tls_dtors();
    for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
        bool ran = false;
        for (unsigned key = 0; key < PD_KEYS; key++) {
            uintptr_t seq = g.keys[key].seq;
            void (*destr)(void *) = g.keys[key].destr;
            if (!(seq & 1) || !destr)
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
