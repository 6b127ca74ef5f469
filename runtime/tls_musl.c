/* Per-fiber musl TCBs: the musl side of runtime/tls.h.
 *
 * Design: as on glibc (runtime/tls_glibc.c), every fiber owns a complete
 * `struct pthread` with its static TLS block, DTV and key array, loaded into
 * FS when a carrier resumes it, so __thread (errno included), pthread_self,
 * keys, the stack canary, stdio lock owners, locale and dlerror state are
 * per fiber.  musl exports none of what glibc's ld.so offers for building a
 * TCB (__copy_tls, libc.tls_head and the key table are hidden), so the TCB
 * is built here from public facts: each module's TLS image and its offset
 * from the thread pointer (dl_iterate_phdr, on the main thread), and the
 * layout of struct pthread below, checked on the main thread at start-up.
 *
 * musl 1.2.3, src/internal/pthread_impl.h, x86_64 (TLS below the thread
 * pointer, no CANARY_PAD).  "ABI" fields are fixed by musl for all
 * versions; the rest may move in another release, which the checks in
 * fz_tls_setup catch (the runtime then stays off and says which field):
 *   0 self, 8 dtv, 16 prev, 24 next, 32 sysinfo, 40 canary      (ABI)
 *   48 tid, 52 errno_val, 56 detach_state, 60 cancel,
 *   64 canceldisable, 65 cancelasync, 66 tsd_used:1 dlerror_flag:1,
 *   72 map_base, 80 map_size, 88 stack (its top), 96 stack_size,
 *   104 guard_size, 112 result, 120 cancelbuf, 128 tsd,
 *   136 robust_list {head, off, pending}, 160 h_errno_val, 164 timer_id,
 *   168 locale, 176 killlock, 184 dlerror_buf, 192 stdio_locks; 200 bytes.
 * Checked: self, tid (gettid), errno_val (__errno_location), h_errno_val
 * (__h_errno_location), detach_state (joinable main), cancelbuf
 * (pthread_cleanup_push), canceldisable (pthread_setcancelstate), tsd
 * (pthread_getspecific), locale (uselocale), dlerror_buf (a failed dlsym),
 * robust_list.head (points at itself), and dtv[i] == each module's block.
 *
 * What fibers must never let musl do: musl's own thread exit
 * (__pthread_exit) on a fiber's TCB would unlink it from a list it is not
 * on and end the carrier -- or, with the TCB alone on its list, call
 * exit(0).  musl reaches it from pthread_exit, from a pending `cancel` at
 * any of its cancellation points, and from pthread_cancel on oneself.  So
 * fibers keep cancellation requests here (struct fiber_extra), never in
 * `cancel`, pthread_exit ends a fiber through fz_tls_thread_exit, and the
 * musl interposers (syscalls/libc_musl.c) take pthread_testcancel and
 * pthread_cancel of oneself.
 *
 * Fibers' TCBs are not on musl's thread list (prev/next point at
 * themselves): musl walks it with the list lock from the calling thread's
 * TCB (set*id's __synccall, dlopen's TLS installation, key deletion), and a
 * fiber on it would be signalled by a tid the kernel does not know.  What
 * the walks would have done for fibers is done here: dlopen's new TLS
 * (fz_tls_modules_changed), key deletion (fz_tls_key_deleted); set*id is
 * syscalls/libc_musl.c's.  The main thread's TCB stays on the list (musl
 * put it there) and becomes the main fiber's; carrier 0's OS thread gets a
 * TCB from here.
 *
 * Memory of a fiber's TCB, one allocation, addresses growing right:
 *   [dtv: 1 + modules words][tsd: PTHREAD_KEYS_MAX words][fiber_extra]
 *   [static TLS: every start-up module at the offset musl gave it]
 *   [struct pthread]   <- thread pointer, aligned as musl aligns it
 * Modules dlopen'ed later get a block of their own per fiber (musl never
 * unloads one, so module ids stay put).
 *
 * Threads: create/recycle run on the fiber that creates; exit on the
 * exiting fiber; the module table changes under `modules_lock`.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <locale.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include "runtime/assert.h"
#include "runtime/fiber.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

/* struct pthread, musl 1.2.3 x86_64 (see the header comment) */
enum {
    PT_SELF = 0,
    PT_DTV = 8,
    PT_PREV = 16,
    PT_NEXT = 24,
    PT_SYSINFO = 32,
    PT_CANARY = 40,
    PT_TID = 48,
    PT_ERRNO = 52,
    PT_DETACH_STATE = 56,
    PT_CANCEL = 60,
    PT_CANCELDISABLE = 64,
    PT_CANCELASYNC = 65,
    PT_FLAGS = 66, /* tsd_used bit 0, dlerror_flag bit 1 */
    PT_MAP_BASE = 72,
    PT_MAP_SIZE = 80,
    PT_STACK = 88,
    PT_STACK_SIZE = 96,
    PT_GUARD_SIZE = 104,
    PT_RESULT = 112,
    PT_CANCELBUF = 120,
    PT_TSD = 128,
    PT_ROBUST_HEAD = 136,
    PT_ROBUST_OFF = 144,
    PT_ROBUST_PENDING = 152,
    PT_H_ERRNO = 160,
    PT_LOCALE = 168,
    PT_DLERROR_BUF = 184,
    PT_SIZE = 200,
};
enum { DT_JOINABLE = 2 };   /* musl's detach_state of a joinable thread */
enum { KEYS_MAX = 128 };    /* musl's PTHREAD_KEYS_MAX */
enum { MAX_MODULES = 512 }; /* TLS modules tracked; more: dlopen'ed ones get none */

/* pthread_mutex_t, for the robust-list walk at fiber exit (musl 1.2.3,
 * pthread_impl.h: _m_type __i[0], _m_lock __vi[1], _m_waiters __vi[2],
 * _m_next __p[4]); the list links _m_next fields. */
enum { MTX_TYPE = 0, MTX_LOCK = 4, MTX_WAITERS = 8, MTX_NEXT = 32 };
enum { MTX_PSHARED = 128, LOCK_OWNER_DIED = 0x40000000 };

/* Volatile: the TCB is memory libc reads behind the compiler's back (GCC
 * dropped a store into the loaded one before a libc call as dead). */
#define AT(tcb, off, type) (*(type volatile *)((char *)(tcb) + (off)))

/* One musl cleanup record (struct __ptcb, <pthread.h>). */
struct cleanup_record {
    void (*fn)(void *);
    void *arg;
    struct cleanup_record *next;
};

/* What the runtime keeps beside a fiber's struct pthread. */
struct fiber_extra {
    void **exit_point;        /* fz_tls_run_body's, while the body runs */
    atomic_bool cancel_asked; /* pthread_cancel's request, never musl's `cancel` */
    void *block;              /* the allocation, for free() */
};

struct module {
    size_t id;         /* dtv index */
    const void *image; /* initialised part */
    size_t len, size, align;
    ptrdiff_t offset; /* thread pointer - block, for start-up modules; else -1 */
};

static struct {
    size_t static_size; /* bytes of static TLS below the thread pointer */
    size_t align;       /* the largest module alignment, at least 16 */
    uintptr_t residue;  /* main's thread pointer mod align: every TCB's */
    uintptr_t sysinfo, canary;
    void *global_locale; /* what musl's new threads start with */
    void *main_tcb;
    struct fiber_extra main_extra;
} L;

static fz_spinlock modules_lock;
static struct module modules[MAX_MODULES];
static size_t module_count; /* highest dtv index known */
static void (*key_destructors[KEYS_MAX])(void *);
static char why_buf[160];

/* Marks a TCB as a fiber's (in map_base, which musl reads only in its own
 * thread exit, never run on a fiber); map_size then holds the fiber. */
static void fiber_tcb_marker(void) {}

static void *thread_pointer(void)
{
    return fz_thread_pointer();
}

static struct fiber_extra *extra_of(void *tcb)
{
    if (tcb == L.main_tcb)
        return &L.main_extra;
    return (struct fiber_extra *)((char *)tcb - L.static_size - sizeof(struct fiber_extra));
}

/* ---- start-up checks -------------------------------------------------- */

static bool refuse(const char **why, const char *fact)
{
    snprintf(why_buf, sizeof why_buf, "musl: %.140s", fact);
    *why = why_buf;
    return false;
}

static int note_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size, (void)arg;
    if (!info->dlpi_tls_modid || info->dlpi_tls_modid >= MAX_MODULES)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS)
            continue;
        struct module *m = &modules[info->dlpi_tls_modid];
        if (m->id)
            return 0; /* known */
        m->image = (const char *)info->dlpi_addr + ph->p_vaddr;
        m->len = ph->p_filesz;
        m->size = ph->p_memsz;
        m->align = ph->p_align ? ph->p_align : 1;
        m->offset = -1;
        m->id = info->dlpi_tls_modid;
        if (m->id > module_count)
            module_count = m->id;
    }
    return 0;
}

/* The modules there at start-up sit at fixed offsets below every thread
 * pointer (musl's static TLS); their blocks are the main thread's. */
static bool static_modules(const char **why)
{
    char *tp = thread_pointer();
    uintptr_t *dtv = AT(tp, PT_DTV, uintptr_t *);
    dl_iterate_phdr(note_module, NULL);
    if (dtv[0] != module_count)
        return refuse(why, "dtv[0] is not the number of TLS modules");
    L.align = 16;
    for (size_t i = 1; i <= module_count; i++) {
        struct module *m = &modules[i];
        if (!m->id || !dtv[i] || (char *)dtv[i] > tp)
            return refuse(why, "dtv does not hold every start-up module's block");
        m->offset = tp - (char *)dtv[i];
        if ((size_t)m->offset < m->size)
            return refuse(why, "a start-up module's TLS block overlaps the thread pointer");
        if ((size_t)m->offset > L.static_size)
            L.static_size = (size_t)m->offset;
        if (m->align > L.align)
            L.align = m->align;
    }
    if (L.align & (L.align - 1))
        return refuse(why, "a TLS alignment that is not a power of two");
    /* a TCB placed at the same residue puts every block at the residue
     * musl gave it, which its alignment accepted */
    L.residue = (uintptr_t)tp % L.align;
    return true;
}

static void probe_cleanup(void *arg)
{
    (void)arg;
}

static bool check_layout(const char **why)
{
    char *tp = thread_pointer();
    if (AT(tp, PT_SELF, void *) != tp)
        return refuse(why, "struct pthread self is not the thread pointer");
    if (AT(tp, PT_TID, int) != (int)fz_sys0(SYS_gettid))
        return refuse(why, "struct pthread field tid does not hold the main thread's tid");
    if ((char *)&errno != tp + PT_ERRNO)
        return refuse(why, "struct pthread field errno_val is not where errno is");
    /* musl gives threads with a stack (every fiber: fz_tcb_set_stack) the
     * TCB's h_errno, the main thread the global one: ask as such a thread */
    void *main_stack = AT(tp, PT_STACK, void *);
    AT(tp, PT_STACK, void *) = tp;
    bool h_errno_ok = (char *)&h_errno == tp + PT_H_ERRNO;
    AT(tp, PT_STACK, void *) = main_stack;
    if (!h_errno_ok)
        return refuse(why, "struct pthread field h_errno_val is not where h_errno is");
    if (AT(tp, PT_DETACH_STATE, int) != DT_JOINABLE)
        return refuse(why, "struct pthread field detach_state: main is not joinable");
    void *head = AT(tp, PT_ROBUST_HEAD, void *);
    if (!head)
        return refuse(why, "struct pthread field robust_list is not a list");

    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    unsigned char disabled = AT(tp, PT_CANCELDISABLE, unsigned char);
    pthread_setcancelstate(old, NULL);
    if (disabled != PTHREAD_CANCEL_DISABLE || AT(tp, PT_CANCELDISABLE, unsigned char) != old)
        return refuse(why, "struct pthread field canceldisable is not where musl keeps it");

    bool pushed_seen = false;
    pthread_cleanup_push(probe_cleanup, NULL);
    struct cleanup_record *r = AT(tp, PT_CANCELBUF, struct cleanup_record *);
    pushed_seen = r && r->fn == probe_cleanup;
    pthread_cleanup_pop(0);
    if (!pushed_seen)
        return refuse(why, "struct pthread field cancelbuf does not hold pthread_cleanup_push's");

    /* keys: a value stored in the TCB's key array is what
     * pthread_getspecific answers (the array exists once musl made one:
     * before the first key or thread it is NULL, and fibers get their own) */
    void **tsd = AT(tp, PT_TSD, void **);
    if (tsd) {
        void *saved = tsd[KEYS_MAX - 1];
        tsd[KEYS_MAX - 1] = &tsd;
        bool tsd_ok = pthread_getspecific(KEYS_MAX - 1) == &tsd;
        tsd[KEYS_MAX - 1] = saved;
        if (!tsd_ok)
            return refuse(why, "struct pthread field tsd does not hold pthread_getspecific's");
    }

    locale_t before = uselocale(LC_GLOBAL_LOCALE);
    L.global_locale = AT(tp, PT_LOCALE, void *);
    locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    uselocale(c);
    bool locale_ok = c && AT(tp, PT_LOCALE, locale_t) == c && L.global_locale != c;
    uselocale(before);
    if (c)
        freelocale(c);
    if (!locale_ok)
        return refuse(why, "struct pthread field locale does not hold uselocale's");

    void *h = dlsym(RTLD_DEFAULT, "fiberize probe: no such symbol");
    bool flagged = AT(tp, PT_FLAGS, unsigned char) & 2;
    char *message = dlerror(); /* clears the flag, as the program would find it */
    if (h || !flagged || !message || message != AT(tp, PT_DLERROR_BUF, char *))
        return refuse(why, "struct pthread field dlerror_buf is not where dlerror keeps it");

    L.sysinfo = AT(tp, PT_SYSINFO, uintptr_t);
    L.canary = AT(tp, PT_CANARY, uintptr_t);
    L.main_tcb = tp;
    return true;
}

ptrdiff_t fz_tcb_tid_offset;

bool fz_tls_setup(const struct fz_os_thread_calls *os, const char **why)
{
    (void)os;
    if (!check_layout(why) || !static_modules(why))
        return false;
    fz_tcb_tid_offset = PT_TID;
    fz_thread_pointer_setup();
    return true;
}

void fz_tls_threads_started(void) {}

/* musl's single-threaded paths follow its hidden libc.threads_minus_1 */
void fz_tls_alone(void) {}

/* ---- building a TCB --------------------------------------------------- */

static void *aligned_block(size_t size, size_t align)
{
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size))
        return NULL;
    memset(p, 0, size);
    return p;
}

/* A dlopen'ed module's block for one fiber. */
static void *module_block(const struct module *m)
{
    char *b = aligned_block(m->size ? m->size : 1, m->align);
    if (b)
        memcpy(b, m->image, m->len);
    return b;
}

/* Give a fiber's DTV every module known now; a grown DTV is a new array
 * (the old one may be in use on another carrier, and is left). Caller
 * holds modules_lock. */
static bool complete_dtv(void *tcb)
{
    uintptr_t *dtv = AT(tcb, PT_DTV, uintptr_t *);
    size_t have = dtv[0];
    if (have >= module_count)
        return true;
    uintptr_t *grown = calloc(module_count + 1, sizeof *grown);
    if (!grown)
        return false;
    memcpy(grown, dtv, (have + 1) * sizeof *dtv);
    for (size_t i = have + 1; i <= module_count; i++)
        if (modules[i].id && !(grown[i] = (uintptr_t)module_block(&modules[i])))
            return free(grown), false;
    grown[0] = module_count;
    __atomic_store_n(&AT(tcb, PT_DTV, uintptr_t *), grown, __ATOMIC_RELEASE);
    return true;
}

/* Module TLS back to the init images (a new TCB, or a recycled one). */
static void reset_module_tls(void *tcb)
{
    uintptr_t *dtv = AT(tcb, PT_DTV, uintptr_t *);
    for (size_t i = 1; i <= dtv[0]; i++) {
        const struct module *m = &modules[i];
        if (!m->id || !dtv[i])
            continue;
        memcpy((void *)dtv[i], m->image, m->len);
        memset((char *)dtv[i] + m->len, 0, m->size - m->len);
    }
}

/* Fields musl's pthread_create would set; everything else zero. */
static void init_pthread_fields(void *tcb, struct fz_fiber *fiber, void **tsd)
{
    AT(tcb, PT_SELF, void *) = tcb;
    AT(tcb, PT_PREV, void *) = tcb;
    AT(tcb, PT_NEXT, void *) = tcb;
    AT(tcb, PT_SYSINFO, uintptr_t) = L.sysinfo;
    AT(tcb, PT_CANARY, uintptr_t) = L.canary;
    AT(tcb, PT_TID, int) = fz_tls_fake_tid();
    AT(tcb, PT_DETACH_STATE, int) = DT_JOINABLE;
    AT(tcb, PT_TSD, void **) = tsd;
    AT(tcb, PT_ROBUST_HEAD, void *) = (char *)tcb + PT_ROBUST_HEAD;
    AT(tcb, PT_LOCALE, void *) = L.global_locale;
    AT(tcb, PT_MAP_BASE, void *) = fiber ? (void *)fiber_tcb_marker : NULL;
    AT(tcb, PT_MAP_SIZE, void *) = fiber;
}

void *fz_tls_create(struct fz_fiber *fiber)
{
    fz_spin_lock(&modules_lock);
    size_t slots = module_count;
    fz_spin_unlock(&modules_lock);
    size_t head = (slots + 1 + KEYS_MAX) * sizeof(void *) + sizeof(struct fiber_extra);
    size_t size = head + L.align + L.static_size + PT_SIZE;
    char *block = aligned_block(size, L.align);
    if (!block)
        return NULL;
    char *tcb = block + head + L.static_size;
    tcb += (L.align + L.residue - (uintptr_t)tcb % L.align) % L.align;
    uintptr_t *dtv = (uintptr_t *)block;
    void **tsd = (void **)(dtv + slots + 1);
    dtv[0] = slots;
    for (size_t i = 1; i <= slots; i++)
        if (modules[i].offset >= 0)
            dtv[i] = (uintptr_t)(tcb - modules[i].offset);
    AT(tcb, PT_DTV, uintptr_t *) = dtv;
    struct fiber_extra *x = extra_of(tcb);
    x->block = block;
    fz_spin_lock(&modules_lock);
    bool whole = true;
    for (size_t i = 1; i <= slots && whole; i++)
        if (modules[i].id && modules[i].offset < 0)
            whole = (dtv[i] = (uintptr_t)module_block(&modules[i])) != 0;
    whole = whole && complete_dtv(tcb);
    fz_spin_unlock(&modules_lock);
    if (!whole) {
        free(block); /* module blocks made so far leak: out of memory anyway */
        return NULL;
    }
    reset_module_tls(tcb);
    init_pthread_fields(tcb, fiber, tsd);
    if (!fiber) {
        /* carrier 0's idle TCB: the OS thread's tid moves to it; the TCB it
         * leaves (the main thread's, or the forking fiber's in a child)
         * becomes a fiber's with a fake one, as every fiber has */
        int tid = (int)fz_sys0(SYS_gettid);
        AT(tcb, PT_TID, int) = tid;
        void *tp = thread_pointer();
        if (AT(tp, PT_TID, int) == tid)
            AT(tp, PT_TID, int) = fz_tls_fake_tid();
    }
    return tcb;
}

void fz_tls_recycle(void *tcb, struct fz_fiber *fiber)
{
    void **tsd = AT(tcb, PT_TSD, void **);
    uintptr_t *dtv = AT(tcb, PT_DTV, uintptr_t *);
    memset(tsd, 0, KEYS_MAX * sizeof *tsd);
    memset(tcb, 0, PT_SIZE);
    AT(tcb, PT_DTV, uintptr_t *) = dtv;
    struct fiber_extra *x = extra_of(tcb);
    x->exit_point = NULL;
    atomic_store(&x->cancel_asked, false);
    fz_spin_lock(&modules_lock);
    complete_dtv(tcb); /* out of memory: dlopen'ed modules since stay missing */
    fz_spin_unlock(&modules_lock);
    reset_module_tls(tcb);
    init_pthread_fields(tcb, fiber, tsd);
}

/* musl's pthread_getattr_np measures the main stack with mremap probes:
 * no shortcut that keeps its answer. */
bool fz_tls_main_stack(void **base, size_t *size, size_t *guard)
{
    (void)base, (void)size, (void)guard;
    return false;
}

void fz_tls_adopt_main(struct fz_fiber *fiber)
{
    void *tp = thread_pointer();
    AT(tp, PT_MAP_BASE, void *) = (void *)fiber_tcb_marker;
    AT(tp, PT_MAP_SIZE, void *) = fiber;
}

void fz_tls_enter(void)
{
    uselocale(LC_GLOBAL_LOCALE);
    h_errno = 0;
    errno = 0;
}

/* ---- modules and keys musl cannot give fibers --------------------------- */

void fz_tls_modules_changed(void)
{
    fz_spin_lock(&modules_lock);
    size_t before = module_count;
    dl_iterate_phdr(note_module, NULL);
    if (module_count != before)
        for (struct fz_fiber *f = fz_fiber_all(); f; f = f->all_next)
            if (f->tcb)
                complete_dtv(f->tcb); /* out of memory: that fiber lacks the module */
    fz_spin_unlock(&modules_lock);
}

void fz_tls_key_created(unsigned key, void (*destructor)(void *))
{
    if (key < KEYS_MAX)
        __atomic_store_n(&key_destructors[key], destructor, __ATOMIC_RELEASE);
}

/* A deleted key's number comes back from pthread_key_create: every fiber's
 * value must read NULL then, as musl's own walk does for the threads on its
 * list. */
void fz_tls_key_deleted(unsigned key)
{
    if (key >= KEYS_MAX)
        return;
    __atomic_store_n(&key_destructors[key], NULL, __ATOMIC_RELEASE);
    for (struct fz_fiber *f = fz_fiber_all(); f; f = f->all_next)
        if (f->tcb && AT(f->tcb, PT_TSD, void **))
            AT(f->tcb, PT_TSD, void **)[key] = NULL;
}

/* ---- a thread's body and its end --------------------------------------- */

/* The exit point is the compiler's own setjmp (five words: frame, resume
 * address, stack): libc's setjmp/longjmp are interposed by the layer above
 * (syscalls/jmpbuf_musl.c), which the runtime may not call. */
void fz_tls_run_body(void *tcb, void *(*body)(void *), void *arg)
{
    void *exit_point[5];
    struct fiber_extra *volatile x = extra_of(tcb); /* read again after longjmp */
    x->exit_point = exit_point;
    if (!__builtin_setjmp(exit_point))
        AT(tcb, PT_RESULT, void *) = body(arg);
    x->exit_point = NULL;
}

void fz_tls_thread_exit(void *value, void (*libc_exit)(void *))
{
    (void)libc_exit; /* musl's would end the carrier */
    void *tp = thread_pointer();
    AT(tp, PT_CANCELDISABLE, unsigned char) = PTHREAD_CANCEL_DISABLE;
    AT(tp, PT_CANCELASYNC, unsigned char) = 0;
    AT(tp, PT_RESULT, void *) = value;
    /* the handlers pthread_cleanup_push recorded, newest first (musl's
     * __pthread_exit does the same; musl does not unwind C++ frames) */
    struct cleanup_record *r;
    while ((r = AT(tp, PT_CANCELBUF, struct cleanup_record *))) {
        AT(tp, PT_CANCELBUF, struct cleanup_record *) = r->next;
        r->fn(r->arg);
    }
    struct fiber_extra *x = extra_of(tp);
    if (!x->exit_point)
        fz_throw("pthread_exit on a fiber outside its thread body", __FILE__, __LINE__);
    __builtin_longjmp(x->exit_point, 1);
}

/* Mutexes still on a fiber's robust list when it ends: owner died, as
 * musl's thread exit marks them (the kernel only sees carriers' lists). */
static void release_robust(void *tcb, bool shared_only)
{
    char *self_head = (char *)tcb + PT_ROBUST_HEAD;
    char *rp = AT(tcb, PT_ROBUST_HEAD, char *);
    for (int n = 0; rp && rp != self_head && n < 4096; n++) {
        char *m = rp - MTX_NEXT;
        char *next = *(char **)rp;
        int type = AT(m, MTX_TYPE, int);
        if (!shared_only || (type & MTX_PSHARED)) {
            int waiters = AT(m, MTX_WAITERS, int);
            int was = __atomic_exchange_n(&AT(m, MTX_LOCK, int), LOCK_OWNER_DIED, __ATOMIC_SEQ_CST);
            if (was < 0 || waiters)
                fz_sys3(SYS_futex, &AT(m, MTX_LOCK, int),
                        (type & MTX_PSHARED) ? FUTEX_WAKE : FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1);
        }
        rp = next;
    }
    if (!shared_only)
        AT(tcb, PT_ROBUST_HEAD, void *) = self_head;
}

void fz_tls_exit(void)
{
    void *tp = thread_pointer();
    void **tsd = AT(tp, PT_TSD, void **);
    for (int round = 0; tsd && round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
        bool ran = false;
        for (unsigned key = 0; key < KEYS_MAX; key++) {
            void *value = tsd[key];
            void (*destructor)(void *) = __atomic_load_n(&key_destructors[key], __ATOMIC_ACQUIRE);
            if (!value || !destructor)
                continue;
            tsd[key] = NULL;
            destructor(value);
            ran = true;
        }
        if (!ran)
            break;
    }
    /* dlerror's message, which musl frees at thread exit */
    void *buf = AT(tp, PT_DLERROR_BUF, void *);
    if (buf && buf != (void *)-1)
        free(buf);
    AT(tp, PT_DLERROR_BUF, void *) = NULL;
    AT(tp, PT_FLAGS, unsigned char) &= (unsigned char)~2;
    release_robust(tp, false);
}

void fz_tls_process_exit(void)
{
    for (struct fz_fiber *f = fz_fiber_all(); f; f = f->all_next)
        if (f->tcb && f->state != FZ_FIBER_DONE)
            release_robust(f->tcb, true);
}

/* ---- fields the runtime reads or writes -------------------------------- */

struct fz_fiber *fz_tls_current_fiber(void)
{
    const void *marker;
    void *fiber;
    __asm__ volatile("mov %%fs:%c1, %0" : "=r"(marker) : "i"(PT_MAP_BASE));
    if (marker != (const void *)fiber_tcb_marker)
        return NULL;
    __asm__ volatile("mov %%fs:%c1, %0" : "=r"(fiber) : "i"(PT_MAP_SIZE));
    return fiber;
}

void *fz_tcb_fiber(void *tcb)
{
    if (AT(tcb, PT_MAP_BASE, void *) != (void *)fiber_tcb_marker)
        return NULL;
    return AT(tcb, PT_MAP_SIZE, void *);
}

void **fz_tcb_result_slot(void *tcb)
{
    return (void **)((char *)tcb + PT_RESULT);
}

void fz_tcb_set_stack(void *tcb, void *base, size_t size, size_t guard)
{
    AT(tcb, PT_STACK, void *) = (char *)base + size; /* musl keeps the top */
    AT(tcb, PT_STACK_SIZE, size_t) = size;
    AT(tcb, PT_GUARD_SIZE, size_t) = guard;
}

/* Fibers park on _m_lock, word 1.  musl 1.2.3 (pthread_mutex_trylock.c):
 * a recursive or errorcheck mutex's _m_lock holds its owner's tid under
 * flag bits 30-31; a normal one only a busy mark, and the sync layer
 * records the holder in word 4, which musl leaves unused. */
pid_t fz_tls_mutex_holder(const void *word, bool (*read)(const void *, void *, size_t))
{
    int m[5];
    if (!read((const int *)word - 1, m, sizeof m))
        return 0;
    if ((m[0] & 3) == PTHREAD_MUTEX_NORMAL)
        return m[4];
    return m[1] & 0x3fffffff;
}

pid_t fz_tcb_tid(void *tcb)
{
    return AT(tcb, PT_TID, int);
}

/* ---- cancellation ------------------------------------------------------ */

bool fz_tcb_request_cancel(void *tcb)
{
    atomic_store(&extra_of(tcb)->cancel_asked, true);
    return __atomic_load_n(&AT(tcb, PT_CANCELDISABLE, unsigned char), __ATOMIC_RELAXED) ==
           PTHREAD_CANCEL_ENABLE;
}

bool fz_tcb_cancel_pending(void *tcb)
{
    return atomic_load(&extra_of(tcb)->cancel_asked) &&
           __atomic_load_n(&AT(tcb, PT_CANCELDISABLE, unsigned char), __ATOMIC_RELAXED) ==
               PTHREAD_CANCEL_ENABLE;
}
