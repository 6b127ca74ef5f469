/* Fiber dumps (see dump.h): every fiber with its state, what it waits on in
 * words, how long, where it was created and a symbolized backtrace; fibers
 * with the same story are grouped so a dump of 100,000 stays readable.
 *
 * Runs on preload/observe.c's thread, never on a carrier, in three steps:
 *
 * 1. Running fibers.  A carrier running a fiber in user code is sent
 *    FZ_DUMP_SAMPLE_SIGNAL (borrowed for the dump, then the program's
 *    disposition is put back; a signal not sent by us is passed on to it).
 *    The handler on the carrier unwinds its own stack from the signal
 *    context into a sample slot and returns: the carrier is stopped only
 *    for that.  A carrier asleep in the kernel (a call fiberize could not
 *    park) is not signalled, so no system call of the program's sees an
 *    EINTR it would not see natively; its fiber is listed without frames.
 *
 * 2. Switched-out fibers (parked, runnable).  Their saved context is read
 *    while they are held: the dump sets `dump_hold`, membarrier(2) puts a
 *    full fence on every running thread, then an `on_cpu` of 0 means no
 *    carrier resumes the fiber until the hold is dropped (sched.c's
 *    claim_cpu stores on_cpu, then checks dump_hold, with only a compiler
 *    fence: the asymmetric half).  Held fibers are read in small batches,
 *    so a carrier that wants one waits for at most a batch's unwinding.
 *    Fiber structs are never freed (fiber.c's registry), so walking them
 *    is always memory-safe; only held ones are believed.
 *
 * 3. Symbols and text, after every hold is dropped: each distinct address
 *    is looked up once (libunwind's ELF symbol tables, so static functions
 *    of the program are named too; dladdr's dynamic symbols without it).
 *
 * How a context is unwound is the libc side's (runtime/unwind.h): libunwind
 * on glibc, a frame-pointer walk on musl.
 *
 * Program memory that is not a held stack (a mutex's owner word, a string
 * argument) is read with process_vm_readv, which fails instead of faulting.
 * TLS-free where it runs on a carrier (the sample handler); the rest runs
 * on an ordinary OS thread and may use libc, but calls no interposed symbol.
 */

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <ucontext.h>
#include "runtime/dump.h"
#include "runtime/fiber.h"
#include "runtime/monitor.h"
#include "runtime/park.h"
#include "runtime/pool.h"
#include "runtime/sched.h"
#include "runtime/sys.h"
#include "runtime/tls.h"
#include "runtime/unwind.h"

#define MAX_FRAMES 32
#define HOLD_BATCH 64
#define SAMPLE_WAIT_NS (100ull * 1000000ull)

static struct fz_dump_settings settings;
atomic_int fz_dump_running;

/* A carrier must not spin here: the dump needs the CPU to finish. */
void fz_dump_wait_hold(struct fz_fiber *f)
{
    for (;;) {
        int h = atomic_load_explicit(&f->dump_hold, memory_order_acquire);
        if (h == 0)
            return;
        if (h == 2 || atomic_compare_exchange_strong(&f->dump_hold, &h, 2))
            fz_futex_wait(&f->dump_hold, 2, NULL);
    }
}

static void release_hold(struct fz_fiber *f)
{
    if (atomic_exchange_explicit(&f->dump_hold, 0, memory_order_release) == 2)
        fz_futex_wake(&f->dump_hold, INT_MAX);
}

void fz_dump_setup(const struct fz_dump_settings *s)
{
    settings = *s;
}

/* ---- what we learn about one fiber ----------------------------------- */

enum { R_SKIP, R_RUNNING, R_RUNNABLE, R_PARKED, R_UNREAD };

struct rec {
    struct fz_fiber *f;
    uint64_t id;
    char name[16];
    int state;
    int carrier;      /* R_RUNNING: its carrier */
    pid_t tid;        /* glibc's (fake) tid: mutex owners are named by it */
    uint64_t since;   /* monotonic ns it entered the state, 0 unknown */
    void *created_at; /* return address in the creating code */
    void *start;      /* start routine */
    const char *note; /* why there is no backtrace, or NULL */
    char *note_owned; /* note, when malloc'd */
    /* the wait (parked, or woken and not yet run) */
    bool waiting;
    uint8_t kind;
    long about;
    const void *addr;
    uint64_t deadline;
    int owner_tid;    /* a mutex's holder (fz_tls_mutex_holder) */
    uint64_t join_id; /* pthread_join: the joined fiber */
    char *pool_text;  /* pool calls: "getaddrinfo("x") running on ..." */
    /* the stack */
    int nframes;
    uintptr_t ip[MAX_FRAMES];
    uint32_t exact;   /* frames whose pc is not a return address */
    int skip;         /* leading frames inside this library */
    const char *call; /* the interposed call (outermost frame of ours) */
    unsigned group;
    struct rec *group_next;
};

/* ---- safe reads of program memory ------------------------------------ */

static bool safe_read(const void *addr, void *buf, size_t len)
{
    struct iovec local = {buf, len}, remote = {(void *)addr, len};
    return fz_sys6(SYS_process_vm_readv, fz_rt.pid, (long)&local, 1, (long)&remote, 1, 0) ==
           (long)len;
}

/* ---- unwinding ------------------------------------------------------- */

/* Fill ips from the context; *exact gets a bit per frame whose pc is the
 * interrupted instruction itself (the first of a sample, the frame under a
 * signal trampoline) rather than a return address. */
static int unwind(ucontext_t *uc, bool signal_frame, uintptr_t *ips, uint32_t *exact)
{
    return fz_unwind_context(settings.unwinder, uc, signal_frame, ips, exact, MAX_FRAMES);
}

/* ---- symbols --------------------------------------------------------- */

struct sym {
    uintptr_t pc; /* the address looked up (a return address minus one) */
    char *name;   /* NULL: unknown */
    uintptr_t off;
    const char *obj; /* basename of the object, interned by dladdr's string */
    bool ours;       /* inside libfiberize */
    bool system;     /* inside libc or the dynamic loader */
};

static struct sym *syms;
static size_t nsyms_cap, nsyms;
static void *our_base;

static uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void syms_reset(void)
{
    for (size_t i = 0; i < nsyms_cap; i++)
        free(syms[i].name);
    free(syms);
    syms = NULL;
    nsyms_cap = nsyms = 0;
}

static void lookup_name(struct sym *s)
{
    const struct fz_unwinder *u = settings.unwinder;
    Dl_info info;
    if (dladdr((void *)s->pc, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        s->obj = slash ? slash + 1 : info.dli_fname;
        s->ours = info.dli_fbase == our_base;
        s->system = strncmp(s->obj, "libc.so", 7) == 0 || strncmp(s->obj, "ld-linux", 8) == 0 ||
                    strncmp(s->obj, "ld-musl", 7) == 0;
        if (!u && info.dli_sname) {
            s->name = strdup(info.dli_sname);
            s->off = s->pc - (uintptr_t)info.dli_saddr;
        }
    }
    if (!u)
        return;
    char buf[256];
    uintptr_t off;
    if (fz_unwind_name(u, s->pc, buf, sizeof buf, &off)) {
        s->name = strdup(buf);
        s->off = off;
    }
}

static struct sym *sym_of(uintptr_t pc)
{
    if (nsyms * 2 >= nsyms_cap) {
        size_t cap = nsyms_cap ? nsyms_cap * 2 : 1024;
        struct sym *fresh = calloc(cap, sizeof *fresh);
        if (!fresh)
            return NULL;
        for (size_t i = 0; i < nsyms_cap; i++) {
            if (!syms[i].pc)
                continue;
            size_t j = hash64(syms[i].pc) & (cap - 1);
            while (fresh[j].pc)
                j = (j + 1) & (cap - 1);
            fresh[j] = syms[i];
        }
        free(syms);
        syms = fresh;
        nsyms_cap = cap;
    }
    size_t j = hash64(pc) & (nsyms_cap - 1);
    while (syms[j].pc && syms[j].pc != pc)
        j = (j + 1) & (nsyms_cap - 1);
    if (!syms[j].pc) {
        syms[j].pc = pc;
        lookup_name(&syms[j]);
        nsyms++;
    }
    return &syms[j];
}

/* Frame i's symbol: the innermost frame of a sample is the exact pc, the
 * others are return addresses, looked up one byte back (a call that ends
 * a function must not be named after the next one). */
static struct sym *frame_sym(const struct rec *r, int i)
{
    uintptr_t pc = r->ip[i];
    return sym_of(r->exact >> i & 1 ? pc : pc - 1);
}

/* The function the program called from the frame whose return address is
 * ra: decode the call before it (call rel32 to a PLT stub, whose jump goes
 * through its GOT slot, or call *GOT(%rip) as -fno-plt makes) and name the
 * target if it is one of our entry points.  The innermost frame of ours
 * does not tell it: interposers often tail-call a helper. */
static const char *called_name(uintptr_t ra)
{
    unsigned char b[11];
    uintptr_t target = 0, slot = 0;
    int32_t d;
    if (safe_read((void *)(ra - 5), b, 5) && b[0] == 0xe8) {
        memcpy(&d, b + 1, 4);
        target = ra + (intptr_t)d;
        if (safe_read((void *)target, b, 11)) {
            if (b[0] == 0xff && b[1] == 0x25) {
                memcpy(&d, b + 2, 4);
                slot = target + 6 + (intptr_t)d;
            } else if (b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) {
                if (b[4] == 0xf2 && b[5] == 0xff && b[6] == 0x25) { /* endbr64; bnd jmp */
                    memcpy(&d, b + 7, 4);
                    slot = target + 11 + (intptr_t)d;
                } else if (b[4] == 0xff && b[5] == 0x25) { /* endbr64; jmp */
                    memcpy(&d, b + 6, 4);
                    slot = target + 10 + (intptr_t)d;
                }
            }
        }
    } else if (safe_read((void *)(ra - 6), b, 6) && b[0] == 0xff && b[1] == 0x15) {
        memcpy(&d, b + 2, 4);
        slot = ra + (intptr_t)d;
    }
    if (slot && !safe_read((void *)slot, &target, sizeof target))
        return NULL;
    if (!target)
        return NULL;
    struct sym *s = sym_of(target);
    return s && s->ours && s->name && s->off == 0 ? s->name : NULL;
}

/* Leading frames are the runtime's (switch, park, the wait); the program's
 * first frame says which call it made (else the last of ours does). */
static void find_call(struct rec *r)
{
    int k = -1, first = 0;
    /* A sample taken while a handler of ours ran on the fiber (the dump
     * signal's, say): what the fiber does is under the trampoline. */
    for (int i = 1; i < r->nframes; i++)
        if (r->exact >> i & 1) {
            bool handler_ours = true;
            for (int j = 0; j < i; j++) {
                struct sym *s = frame_sym(r, j);
                handler_ours = handler_ours && s && (s->ours || s->system);
            }
            if (handler_ours) {
                memmove(r->ip, r->ip + i, (size_t)(r->nframes - i) * sizeof r->ip[0]);
                r->nframes -= i;
                r->exact >>= i;
            }
            break;
        }
    /* our frames may sit under libc's (a sample taken in the system call
     * an interposer makes): the call is the last of ours before the
     * program's code */
    for (int i = first; i < r->nframes; i++) {
        struct sym *s = frame_sym(r, i);
        if (s && s->ours)
            k = i;
        else if (!s || !s->system)
            break;
    }
    r->skip = k + 1;
    r->call = NULL;
    if (k >= 0) {
        struct sym *s = frame_sym(r, k);
        r->call = s && s->name ? s->name : NULL;
        if (r->skip < r->nframes) {
            const char *called = called_name(r->ip[r->skip]);
            if (called)
                r->call = called;
        }
    }
    /* the bottom frames of ours (fiber entry, main's unwind point) say
     * nothing: drop them */
    while (r->nframes > r->skip) {
        struct sym *s = frame_sym(r, r->nframes - 1);
        if (!s || !s->ours)
            break;
        r->nframes--;
    }
}

static bool frames_contain(struct rec *r, const char *name)
{
    for (int i = 0; i < r->skip; i++) {
        struct sym *s = frame_sym(r, i);
        if (s && s->name && strcmp(s->name, name) == 0)
            return true;
    }
    return false;
}

/* ---- step 1: sampling running fibers --------------------------------- */

struct sample {
    atomic_int state; /* 0 not asked, 1 asked, 3 unwinding, 2 done */
    struct fz_fiber *fiber;
    bool switching;
    int nframes;
    uintptr_t ip[MAX_FRAMES];
    uint32_t exact;
};

static struct sample *samples;
static unsigned nsamples;
static atomic_int sampling;
static struct sigaction program_action;

static void pass_on(int sig, siginfo_t *si, void *uc)
{
    if (program_action.sa_flags & SA_SIGINFO) {
        if (program_action.sa_sigaction)
            program_action.sa_sigaction(sig, si, uc);
    } else if (program_action.sa_handler != SIG_DFL && program_action.sa_handler != SIG_IGN) {
        program_action.sa_handler(sig);
    }
}

static void on_sample(int sig, siginfo_t *si, void *ucv)
{
    if (!atomic_load(&sampling) || si->si_code != SI_TKILL || si->si_pid != fz_rt.pid) {
        pass_on(sig, si, ucv);
        return;
    }
    pid_t tid = (pid_t)fz_sys0(SYS_gettid);
    struct sample *s = NULL;
    struct fz_carrier *c = NULL;
    for (unsigned i = 0; i < nsamples; i++)
        if (fz_rt.carriers[i].tid == tid) {
            s = &samples[i];
            c = &fz_rt.carriers[i];
        }
    int asked = 1;
    if (!s || !atomic_compare_exchange_strong(&s->state, &asked, 3))
        return; /* not asked, or the dump gave up waiting */
    ucontext_t *uc = ucv;
    struct fz_fiber *f = c->current;
    char *sp = (char *)uc->uc_mcontext.gregs[REG_RSP];
    /* errno only on f's own TCB: an idle carrier keeps the TCB of a fiber
     * that may run elsewhere now (sched.c, "Thread pointer"). */
    if (f && sp >= (char *)f->stack.base && sp < (char *)fz_stack_top(&f->stack) &&
        fz_tls_current_fiber() == f) {
        int saved_errno = errno; /* libunwind's address checks may set it */
        s->fiber = f;
        s->nframes = unwind(uc, true, s->ip, &s->exact);
        errno = saved_errno;
    } else {
        s->switching = f != NULL; /* between two fibers' stacks */
    }
    atomic_store(&s->state, 2);
    fz_futex_wake(&s->state, 1);
}

/* 'R' in /proc/self/task/TID/stat: on a CPU or about to be, in user code
 * as far as we can tell (a thread in a blocking call is 'S' or 'D'). */
static char thread_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = (int)fz_sys3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return '?';
    long n = fz_sys3(SYS_read, fd, buf, sizeof buf - 1);
    fz_sys1(SYS_close, fd);
    if (n <= 0)
        return '?';
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

/* A carrier asleep in the kernel under a fiber: which call holds it
 * (malloc'd). */
static char *blocked_note(pid_t tid)
{
    static const struct {
        int nr;
        const char *name;
    } names[] = {{0, "read"},         {1, "write"},    {7, "poll"},      {23, "select"},
                 {35, "nanosleep"},   {43, "accept"},  {45, "recvfrom"}, {47, "recvmsg"},
                 {61, "wait4"},       {73, "flock"},   {202, "futex"},   {230, "clock_nanosleep"},
                 {232, "epoll_wait"}, {288, "accept4"}};
    char note[128], path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    int fd = (int)fz_sys3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
    long n = fd >= 0 ? fz_sys3(SYS_read, fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        fz_sys1(SYS_close, fd);
    buf[n > 0 ? n : 0] = '\0';
    int nr = atoi(buf);
    const char *name = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].nr == nr)
            name = names[i].name;
    if (n > 0 && buf[0] >= '0' && buf[0] <= '9')
        snprintf(note, sizeof note,
                 "its carrier is blocked in system call %d%s%s%s (not one fiberize parks)", nr,
                 name ? " (" : "", name ? name : "", name ? ")" : "");
    else
        snprintf(note, sizeof note, "its carrier is blocked in the kernel");
    return strdup(note);
}

static void sample_carriers(unsigned n)
{
    nsamples = n;
    samples = calloc(n, sizeof *samples);
    if (!samples || !settings.sigaction)
        return;
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = on_sample;
    act.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&act.sa_mask);
    if (settings.sigaction(FZ_DUMP_SAMPLE_SIGNAL, &act, &program_action) != 0)
        return;
    atomic_store(&sampling, 1);
    uint64_t bit = 1ull << (FZ_DUMP_SAMPLE_SIGNAL - 1);
    /* One carrier at a time: libunwind's own mutexes are the program's
     * interposed pthread_mutex_lock, which must not find them contended
     * inside a signal handler (it would park the interrupted fiber). */
    for (unsigned i = 0; i < n; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        if (!__atomic_load_n(&c->current, __ATOMIC_ACQUIRE) || !c->tid)
            continue;
        if (c->kernel_mask & bit)
            continue; /* the running fiber blocks it: it would stay pending */
        if (thread_state(c->tid) != 'R')
            continue;
        struct sample *s = &samples[i];
        atomic_store(&s->state, 1);
        fz_sys3(SYS_tgkill, fz_rt.pid, c->tid, FZ_DUMP_SAMPLE_SIGNAL);
        struct timespec until = fz_ns_to_ts(fz_real_now_ns() + SAMPLE_WAIT_NS);
        int state;
        while ((state = atomic_load(&s->state)) == 1)
            if (fz_futex_wait(&s->state, 1, &until) == -ETIMEDOUT)
                break;
        /* not there yet: withdraw the request (the handler checks it);
         * already at work: it finishes soon, wait for it */
        if (state == 1 && atomic_compare_exchange_strong(&s->state, &state, 0))
            continue;
        while ((state = atomic_load(&s->state)) == 3)
            fz_futex_wait(&s->state, 3, NULL);
    }
    atomic_store(&sampling, 0);
    settings.sigaction(FZ_DUMP_SAMPLE_SIGNAL, &program_action, NULL);
}

/* ---- step 2: holding switched-out fibers ----------------------------- */

static int membarrier_cmd = -1;

static void membarrier_setup(void)
{
    if (membarrier_cmd != -1)
        return;
    if (fz_sys3(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        membarrier_cmd = MEMBARRIER_CMD_PRIVATE_EXPEDITED;
    else if (fz_sys3(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) > 0)
        membarrier_cmd = MEMBARRIER_CMD_GLOBAL;
    else
        membarrier_cmd = -2;
}

static bool fence_carriers(void)
{
    return membarrier_cmd >= 0 && fz_sys3(SYS_membarrier, membarrier_cmd, 0, 0) == 0;
}

static bool is_join(const char *call)
{
    return call && (strstr(call, "join") != NULL);
}

/* The wait of a held fiber: its waiter is on its own stack, alive while
 * the fiber cannot run. */
static void read_wait(struct rec *r, struct fz_fiber *f, const char *sp, const char *top)
{
    struct fz_waiter *w = f->waiter;
    if (!w || (char *)w < sp || (char *)w >= top)
        return;
    r->waiting = true;
    r->kind = w->kind;
    r->about = w->about;
    r->addr = w->addr;
    r->deadline = w->deadline;
    r->since = f->parked_at;
    r->owner_tid = r->addr ? fz_tls_mutex_holder(r->addr, safe_read) : 0;
}

static void describe_pool_call(struct rec *r)
{
    const struct fz_pool_call *call =
        (const void *)((const char *)r->addr - offsetof(struct fz_pool_call, state));
    char where[64], arg[96] = "";
    fz_pool_describe(call, where, sizeof where);
    void **args = call->args;
    const char *name = r->call ? r->call : "?";
    /* name lookups take the name first: show it */
    if (args &&
        (strncmp(name, "getaddrinfo", 11) == 0 || strncmp(name, "gethostbyname", 13) == 0)) {
        const char *p;
        char s[64];
        if (safe_read(args[0], &p, sizeof p) && p) {
            size_t i = 0;
            for (; i < sizeof s - 1 && safe_read(p + i, &s[i], 1) && s[i]; i++)
                ;
            s[i] = '\0';
            snprintf(arg, sizeof arg, "\"%s%s\"", s, i == sizeof s - 1 ? "..." : "");
        }
    }
    size_t len = strlen(name) + strlen(arg) + strlen(where) + 16;
    r->pool_text = malloc(len);
    if (r->pool_text)
        snprintf(r->pool_text, len, "%s(%s) %s", name, arg, where);
}

/* Who the record is about: id, name, tid, where and how it was made. */
static void name_record(struct rec *r, const struct fz_fiber *f)
{
    r->id = __atomic_load_n(&f->id, __ATOMIC_RELAXED);
    memcpy(r->name, f->name, sizeof r->name);
    r->name[sizeof r->name - 1] = '\0';
    r->tid = fz_tcb_tid(f->tcb);
    r->created_at = f->created_at;
    r->start = (void *)f->start;
}

/* f is held and not on a CPU: read everything that needs it still. */
static void read_held(struct rec *r, struct fz_fiber *f)
{
    int state = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
    if (state != FZ_FIBER_PARKED && state != FZ_FIBER_RUNNABLE)
        return; /* exited, pooled or being made */
    char *sp = f->sp, *top = fz_stack_top(&f->stack);
    if (!sp || sp < (char *)f->stack.base || sp + 64 > top)
        return;
    if (f->id == 0)
        return; /* being made: ids start at 1 */
    r->state = state == FZ_FIBER_PARKED ? R_PARKED : R_RUNNABLE;
    name_record(r, f);
    uint64_t *frame = (uint64_t *)sp; /* fz_switch's: see switch.S */
    if (frame[7] == (uintptr_t)fz_fiber_trampoline) {
        r->note = "not started yet";
        return;
    }
    read_wait(r, f, sp, top);
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    greg_t *g = uc.uc_mcontext.gregs;
    g[REG_R15] = (greg_t)frame[1];
    g[REG_R14] = (greg_t)frame[2];
    g[REG_R13] = (greg_t)frame[3];
    g[REG_R12] = (greg_t)frame[4];
    g[REG_RBX] = (greg_t)frame[5];
    g[REG_RBP] = (greg_t)frame[6];
    g[REG_RIP] = (greg_t)frame[7];
    g[REG_RSP] = (greg_t)(sp + 64);
    r->nframes = unwind(&uc, false, r->ip, &r->exact);
    /* the interposed call decides how the wait reads; the pool call and
     * the joined fiber must be read while the fiber is held */
    find_call(r);
    if (r->waiting && r->addr && frames_contain(r, "fz_pool_run"))
        describe_pool_call(r);
    else if (r->waiting && r->addr && is_join(r->call)) {
        const struct fz_fiber *t =
            (const void *)((const char *)r->addr - offsetof(struct fz_fiber, exit_word));
        r->join_id = t->id;
    }
}

static void hold_and_read(struct rec *recs, size_t n)
{
    membarrier_setup();
    for (size_t start = 0; start < n; start += HOLD_BATCH) {
        size_t end = start + HOLD_BATCH < n ? start + HOLD_BATCH : n;
        for (size_t i = start; i < end; i++)
            if (recs[i].state == R_UNREAD)
                atomic_store_explicit(&recs[i].f->dump_hold, 1, memory_order_relaxed);
        bool fenced = fence_carriers();
        for (size_t i = start; i < end; i++) {
            struct rec *r = &recs[i];
            if (r->state != R_UNREAD)
                continue;
            if (fenced && atomic_load(&r->f->on_cpu) == 0)
                read_held(r, r->f);
            release_hold(r->f);
        }
    }
}

/* ---- collecting ------------------------------------------------------ */

static struct rec *collect(size_t *count)
{
    size_t n = 0;
    for (struct fz_fiber *f = fz_fiber_all(); f; f = f->all_next)
        n++;
    struct rec *recs = calloc(n ? n : 1, sizeof *recs);
    if (!recs)
        return NULL;
    unsigned nc = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
    sample_carriers(nc);
    size_t i = 0;
    for (struct fz_fiber *f = fz_fiber_all(); f && i < n; f = f->all_next, i++) {
        struct rec *r = &recs[i];
        r->f = f;
        r->carrier = -1;
        struct sample *s = NULL;
        for (unsigned k = 0; samples && k < nsamples; k++)
            if (atomic_load(&samples[k].state) == 2 && samples[k].fiber == f)
                s = &samples[k], r->carrier = (int)k;
        if (s) {
            r->state = R_RUNNING;
            name_record(r, f);
            r->nframes = s->nframes;
            memcpy(r->ip, s->ip, sizeof r->ip);
            r->exact = s->exact;
            find_call(r);
            continue;
        }
        int state = __atomic_load_n(&f->state, __ATOMIC_RELAXED);
        if (state == FZ_FIBER_DONE)
            continue; /* exited or pooled: R_SKIP */
        if (state == FZ_FIBER_RUNNING) {
            struct fz_carrier *c = __atomic_load_n(&f->carrier, __ATOMIC_RELAXED);
            r->state = R_RUNNING;
            r->carrier = c ? (int)c->index : -1;
            name_record(r, f);
            if (c && thread_state(c->tid) != 'R')
                r->note = r->note_owned = blocked_note(c->tid);
            else
                r->note = "not sampled (switching)";
            continue;
        }
        /* named now, in case the hold finds it on a CPU every time
         * (listed as switching): an id of 0 is a fiber being made */
        name_record(r, f);
        if (r->id == 0)
            continue;
        r->state = R_UNREAD;
    }
    hold_and_read(recs, n);
    /* a fiber that ran through the whole hold is counted, not shown
     * wrongly: it was running or switching at every look */
    for (i = 0; i < n; i++)
        if (recs[i].state == R_UNREAD &&
            (__atomic_load_n(&recs[i].f->state, __ATOMIC_RELAXED) == FZ_FIBER_DONE ||
             __atomic_load_n(&recs[i].f->id, __ATOMIC_RELAXED) != recs[i].id))
            recs[i].state = R_SKIP; /* gone, or its struct reused since */
    free(samples);
    samples = NULL;
    *count = n;
    return recs;
}

/* ---- text ------------------------------------------------------------ */

struct out {
    int fd;
    size_t n;
    char buf[1 << 16];
};

static void out_flush(struct out *o)
{
    size_t done = 0;
    while (done < o->n) {
        long w = fz_sys3(SYS_write, o->fd, o->buf + done, o->n - done);
        if (w == -EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    o->n = 0;
}

__attribute__((format(printf, 2, 3))) static void outf(struct out *o, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line)
        len = sizeof line - 1;
    if (o->n + (size_t)len > sizeof o->buf)
        out_flush(o);
    memcpy(o->buf + o->n, line, (size_t)len);
    o->n += (size_t)len;
}

/* 9998 -> "9,998" */
static const char *thousands(uint64_t v, char *buf)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v), j = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = tmp[i];
    }
    buf[j] = '\0';
    return buf;
}

static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, ntohs(a->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *a = (const void *)ss;
        snprintf(buf, len, "unix:%.60s", a->sun_path[0] ? a->sun_path : "(unnamed)");
    } else {
        snprintf(buf, len, "family %d", ss->ss_family);
    }
}

/* What fd is now, in words: "socket 127.0.0.1:8080<-127.0.0.1:51234",
 * "listening socket 0.0.0.0:8080", "pipe", "pidfd of 4711".  *klass gets
 * the short word for grouping.  pid: a pidfd's process, else 0. */
static void describe_fd(int fd, char *buf, size_t len, const char **klass, int *pid)
{
    struct stat st;
    *pid = 0;
    *klass = "fd";
    if (fz_sys2(SYS_fstat, fd, &st) != 0) {
        snprintf(buf, len, "closed");
        return;
    }
    if (S_ISSOCK(st.st_mode)) {
        struct sockaddr_storage me, peer;
        socklen_t ml = sizeof me, pl = sizeof peer;
        int listening = 0;
        socklen_t ll = sizeof listening;
        char a[80] = "?";
        if (fz_sys3(SYS_getsockname, fd, &me, &ml) == 0)
            fmt_addr(&me, a, sizeof a);
        fz_sys6(SYS_getsockopt, fd, SOL_SOCKET, SO_ACCEPTCONN, (long)&listening, (long)&ll, 0);
        if (listening) {
            *klass = "listening socket";
            snprintf(buf, len, "listening socket %s", a);
            return;
        }
        *klass = "socket";
        if (fz_sys3(SYS_getpeername, fd, &peer, &pl) == 0) {
            char b[80] = "";
            fmt_addr(&peer, b, sizeof b);
            snprintf(buf, len, "socket %s<-%s", a, b);
        } else {
            snprintf(buf, len, "socket %s", a);
        }
        return;
    }
    if (S_ISFIFO(st.st_mode)) {
        *klass = "pipe";
        snprintf(buf, len, "pipe");
        return;
    }
    char path[64], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long n = fz_sys3(SYS_readlink, path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    if (strcmp(target, "anon_inode:[pidfd]") == 0) {
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
        int ifd = (int)fz_sys3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0);
        if (ifd >= 0) {
            char info[512];
            long m = fz_sys3(SYS_read, ifd, info, sizeof info - 1);
            fz_sys1(SYS_close, ifd);
            info[m > 0 ? m : 0] = '\0';
            char *p = strstr(info, "Pid:");
            if (p)
                *pid = atoi(p + 4);
        }
        *klass = "child";
        snprintf(buf, len, "%d", *pid);
        return;
    }
    if (S_ISCHR(st.st_mode))
        *klass = "device";
    snprintf(buf, len, "%.150s", target[0] ? target : "fd");
}

static const char *fiber_of_tid(const struct rec *recs, size_t n, int tid, char *buf, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (recs[i].state != R_SKIP && recs[i].tid == tid) {
            snprintf(buf, len, "fiber %llu", (unsigned long long)recs[i].id);
            return buf;
        }
    snprintf(buf, len, "tid %d", tid);
    return buf;
}

static bool is_mutex_call(const char *c)
{
    return c && (strncmp(c, "pthread_mutex_", 14) == 0 || strncmp(c, "mtx_", 4) == 0);
}

/* The wait in words.  full: with its particulars (fd, address, time left);
 * otherwise the form fibers are grouped by ("read(socket)"). */
static void wait_text(const struct rec *r, const struct rec *recs, size_t n, uint64_t now,
                      bool full, char *buf, size_t len)
{
    const char *call = r->call ? r->call : "wait";
    if (!r->waiting) {
        snprintf(buf, len, "%s", r->call ? r->call : "");
        return;
    }
    if (r->pool_text) {
        if (full)
            snprintf(buf, len, "pool: %s", r->pool_text);
        else
            snprintf(buf, len, "pool: %s", call);
        return;
    }
    if (r->kind == FZ_WAIT_FD) {
        if (r->about < 0) {
            snprintf(buf, len, full ? "%s(%ld fds)" : "%s(fds)", call, -r->about);
            return;
        }
        char what[200];
        const char *klass;
        int pid;
        describe_fd((int)r->about, what, sizeof what, &klass, &pid);
        if (pid)
            snprintf(buf, len, full ? "%s(%d)" : "%s(child)", call, pid);
        else if (full)
            snprintf(buf, len, "%s(fd %ld, %s)", call, r->about, what);
        else
            snprintf(buf, len, "%s(%s)", call, klass);
        return;
    }
    if (r->addr && is_join(call)) {
        if (full)
            snprintf(buf, len, "join(fiber %llu)", (unsigned long long)r->join_id);
        else
            snprintf(buf, len, "join");
        return;
    }
    if (r->addr && is_mutex_call(call)) {
        char who[48];
        if (!full)
            snprintf(buf, len, "%s", call);
        else if (r->owner_tid)
            snprintf(buf, len, "%s(%p, held by %s)", call, r->addr,
                     fiber_of_tid(recs, n, r->owner_tid, who, sizeof who));
        else
            snprintf(buf, len, "%s(%p)", call, r->addr);
        return;
    }
    if (r->addr) {
        snprintf(buf, len, full ? "%s(%p)" : "%s", call, r->addr);
        return;
    }
    if (r->deadline && r->deadline != 1 && full) {
        uint64_t left = r->deadline > now ? r->deadline - now : 0;
        if (r->deadline >= UINT64_MAX / 2)
            snprintf(buf, len, "%s, no time limit", call);
        else
            snprintf(buf, len, "%s, %llu.%03llu s left", call,
                     (unsigned long long)(left / 1000000000u),
                     (unsigned long long)(left / 1000000u % 1000u));
        return;
    }
    snprintf(buf, len, "%s", call);
}

static const char *state_word(const struct rec *r, char *buf, size_t len)
{
    switch (r->state) {
    case R_RUNNING:
        if (r->carrier >= 0)
            snprintf(buf, len, "running on carrier %d", r->carrier);
        else
            snprintf(buf, len, "running");
        return buf;
    case R_RUNNABLE:
        return r->waiting ? "runnable (woken)" : "runnable";
    case R_PARKED:
        return "parked";
    default:
        return "switching";
    }
}

static void sym_text(struct sym *s, uintptr_t pc, char *buf, size_t len)
{
    if (s && s->name)
        snprintf(buf, len, "%s+0x%lx (%s)", s->name, (unsigned long)(s->off + (pc - s->pc)),
                 s->obj ? s->obj : "?");
    else
        snprintf(buf, len, "0x%lx (%s)", (unsigned long)pc, s && s->obj ? s->obj : "?");
}

static void print_frames(struct out *o, const struct rec *r)
{
    for (int i = r->skip; i < r->nframes; i++) {
        char t[400];
        struct sym *s = frame_sym(r, i);
        sym_text(s, r->ip[i], t, sizeof t);
        outf(o, "    #%-2d %s\n", i - r->skip, t);
    }
}

static void print_line(struct out *o, const struct rec *r, const struct rec *recs, size_t n,
                       uint64_t now, uint64_t coarse_now, const char *indent)
{
    char st[48], w[400] = "", age[48] = "";
    wait_text(r, recs, n, now, true, w, sizeof w);
    if (r->since && coarse_now > r->since && r->state == R_PARKED) {
        uint64_t d = coarse_now - r->since;
        snprintf(age, sizeof age, " %llu.%03llu s", (unsigned long long)(d / 1000000000u),
                 (unsigned long long)(d / 1000000u % 1000u));
    }
    outf(o, "%sfiber %llu \"%s\" %s%s%s%s%s%s\n", indent, (unsigned long long)r->id, r->name,
         state_word(r, st, sizeof st), age, w[0] ? ": " : "", w, r->note ? " -- " : "",
         r->note ? r->note : "");
}

static void print_origin(struct out *o, const struct rec *r)
{
    char a[400] = "", b[400] = "";
    if (r->created_at)
        sym_text(sym_of((uintptr_t)r->created_at - 1), (uintptr_t)r->created_at, a, sizeof a);
    if (r->start)
        sym_text(sym_of((uintptr_t)r->start), (uintptr_t)r->start, b, sizeof b);
    if (r->created_at)
        outf(o, "    created at %s, start routine %s\n", a, b);
    else if (!r->start)
        outf(o, "    the main thread\n");
}

/* ---- grouping -------------------------------------------------------- */

struct group {
    uint64_t hash;
    char *key;
    size_t count;
    struct rec *first, *last;
};

static char *group_key(const struct rec *r, const struct rec *recs, size_t n, uint64_t now)
{
    char w[400], key[4096];
    wait_text(r, recs, n, now, false, w, sizeof w);
    const char *state = r->state == R_RUNNING  ? "running"
                        : r->state == R_PARKED ? "parked"
                                               : "runnable";
    int len = snprintf(key, sizeof key, "%s%s%s", state, w[0] ? " " : "", w);
    if (r->note)
        len += snprintf(key + len, sizeof key - len, " -- %s", r->note);
    const char *sep = " in ";
    for (int i = r->skip; i < r->nframes && len < (int)sizeof key - 300; i++) {
        struct sym *s = frame_sym(r, i);
        len += snprintf(key + len, sizeof key - len, "%s%s", sep, s && s->name ? s->name : "?");
        sep = " <- ";
    }
    return strdup(key);
}

static int by_count(const void *a, const void *b)
{
    const struct group *x = *(struct group *const *)a, *y = *(struct group *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->first->id < y->first->id ? -1 : 1;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ---- the report ------------------------------------------------------ */

static void print_threads(struct out *o, unsigned nc)
{
    outf(o, "carriers: %u (%u to run fibers, %u spare)\n", nc, fz_rt.target,
         nc > fz_rt.target ? nc - fz_rt.target : 0);
    for (unsigned i = 0; i < nc; i++) {
        struct fz_carrier *c = &fz_rt.carriers[i];
        struct fz_fiber *f = __atomic_load_n(&c->current, __ATOMIC_RELAXED);
        char what[96];
        if (c->spare && atomic_load(&c->retired))
            snprintf(what, sizeof what, "retired spare");
        else if (f)
            snprintf(what, sizeof what, "running fiber %llu", (unsigned long long)f->id);
        else if (c->driving)
            snprintf(what, sizeof what, "idle, watching fds and timers");
        else
            snprintf(what, sizeof what, "idle");
        outf(o, "  carrier %u%s tid %d: %s%s\n", i, c->spare ? " (spare)" : "", (int)c->tid, what,
             c->stuck ? ", stuck (its fibers handed off)" : "");
    }
    if (fz_monitor_tid)
        outf(o, "monitor: tid %d, %lu hand-offs\n", (int)fz_monitor_tid,
             (unsigned long)atomic_load(&fz_rt.handoffs));
    struct fz_pool_snapshot p;
    fz_pool_snapshot(&p);
    outf(o, "blocking pool: %u threads (%u busy), %u calls queued, %lu calls made\n", p.threads,
         p.busy, p.queued, p.calls);
}

void fz_dump_write(int fd)
{
    if (!fz_rt.active)
        return;
    Dl_info self;
    if (!our_base && dladdr((void *)fz_dump_write, &self))
        our_base = self.dli_fbase;
    struct out *o = malloc(sizeof *o);
    if (!o)
        return;
    o->fd = fd;
    o->n = 0;
    size_t n = 0;
    atomic_store(&fz_dump_running, 1);
    struct rec *recs = collect(&n);
    atomic_store(&fz_dump_running, 0);
    unsigned nc = atomic_load_explicit(&fz_rt.ncarriers, memory_order_acquire);
    uint64_t now = fz_now_ns(), coarse_now = fz_coarse_now_ns();
    size_t live = 0, by_state[5] = {0};
    for (size_t i = 0; recs && i < n; i++)
        if (recs[i].state != R_SKIP) {
            live++;
            by_state[recs[i].state]++;
        }
    char t1[32];
    outf(o, "==== fiberize dump, pid %d: %s fibers (%zu running, %zu runnable, %zu parked",
         (int)fz_rt.pid, thousands(live, t1), by_state[R_RUNNING], by_state[R_RUNNABLE],
         by_state[R_PARKED]);
    if (by_state[R_UNREAD])
        outf(o, ", %zu switching", by_state[R_UNREAD]);
    outf(o, ")\n");
    print_threads(o, nc);
    const char *unwind_note = fz_unwind_note(settings.unwinder);
    if (unwind_note)
        outf(o, "(%s)\n", unwind_note);
    if (!recs) {
        outf(o, "(out of memory: no fibers listed)\n==== end of dump\n");
        out_flush(o);
        free(o);
        return;
    }
    /* group */
    size_t gcap = 64;
    while (gcap < live * 2)
        gcap *= 2;
    struct group *groups = calloc(gcap, sizeof *groups);
    size_t ngroups = 0;
    for (size_t i = 0; groups && i < n; i++) {
        struct rec *r = &recs[i];
        if (r->state == R_SKIP)
            continue;
        char *key = group_key(r, recs, n, now);
        if (!key)
            continue;
        uint64_t h = hash_str(key);
        size_t j = h & (gcap - 1);
        while (groups[j].key && (groups[j].hash != h || strcmp(groups[j].key, key) != 0))
            j = (j + 1) & (gcap - 1);
        struct group *g = &groups[j];
        if (!g->key) {
            g->key = key;
            g->hash = h;
            g->first = r;
            ngroups++;
        } else {
            free(key);
            g->last->group_next = r;
        }
        g->last = r;
        g->count++;
    }
    struct group **order = calloc(ngroups ? ngroups : 1, sizeof *order);
    size_t k = 0;
    for (size_t j = 0; groups && order && j < gcap; j++)
        if (groups[j].key)
            order[k++] = &groups[j];
    if (order)
        qsort(order, k, sizeof *order, by_count);
    outf(o, "-- %zu kinds of fibers:\n", k);
    for (size_t j = 0; order && j < k; j++)
        outf(o, "  %s %s: %s\n", thousands(order[j]->count, t1),
             order[j]->count == 1 ? "fiber" : "fibers", order[j]->key);
    for (size_t j = 0; order && j < k; j++) {
        struct group *g = order[j];
        if (g->count == 1) {
            outf(o, "\n");
            print_line(o, g->first, recs, n, now, coarse_now, "");
            print_origin(o, g->first);
            print_frames(o, g->first);
            continue;
        }
        outf(o, "\n%s fibers: %s\n", thousands(g->count, t1), g->key);
        print_frames(o, g->first);
        for (struct rec *r = g->first; r; r = r->group_next)
            print_line(o, r, recs, n, now, coarse_now, "  ");
    }
    outf(o, "==== end of dump\n");
    out_flush(o);
    for (size_t j = 0; groups && j < gcap; j++)
        free(groups[j].key);
    free(groups);
    free(order);
    for (size_t i = 0; i < n; i++) {
        free(recs[i].pool_text);
        free(recs[i].note_owned);
    }
    free(recs);
    free(o);
    syms_reset();
}
