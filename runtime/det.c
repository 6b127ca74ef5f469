/* Deterministic schedules: fiberize --seed N replays one interleaving.
 *
 * Why it can work: under fiberize every point where a thread can block or
 * be switched is ours (a lock, an unlock, a read, a sleep, thread start and
 * exit), so on one carrier the order in which fibers run is decided by us
 * alone.  Decide it with a PRNG seeded with N, keep time out of it, and the
 * same program with the same input runs the same way every time, on any
 * machine.
 *
 * Strategy: PCT (Burckhardt et al., "A randomized scheduler with
 * probabilistic guarantees of finding bugs", ASPLOS 2010).  Every fiber
 * gets a random priority when it first becomes runnable; the runnable
 * fiber of highest priority always runs; at d - 1 steps chosen at random
 * among the run's expected k scheduling points, the running fiber's
 * priority drops below every initial one.  A bug that needs d ordering
 * constraints between n threads is hit with probability at least
 * 1 / (n * k^(d-1)) per run -- a bound, where random preemption at every
 * point has none worth having (a depth-1 bug that needs one thread to run
 * first is found half the time either way; a depth-2 bug such as a missed
 * wake-up needs a preemption at one exact point, which PCT places with
 * probability 1/k and a coin at every point places with a chance that
 * shrinks with every other coin that must come up "go on").  Rejected:
 * random choice at every point (no bound; runs are dominated by
 * preemptions that change nothing), and exhaustive search (loom's way:
 * needs the program written against its API, and explodes past toy size).
 *
 * sched_yield is the exception: the yielding fiber lets the best other
 * runnable fiber run whatever the priorities, or a spin-wait on a
 * lower-priority thread would spin for ever.
 *
 * Time is virtual: fz_virtual_ns starts at the real monotonic time, moves
 * DET_STEP_NS at every scheduling point and every clock read by the
 * program, and jumps to the next timer when every fiber waits.  Sleeps
 * cost nothing and timeouts fire in schedule order, not machine order.
 *
 * What still comes from outside: fds another process writes (the carrier
 * sleeps in epoll for them: fz_det_saw_outside), signals from outside,
 * and the results of calls made in the blocking pool.  Pool calls come
 * back in a fixed order: the carrier takes a finished call in only when
 * nothing else can run, and then the oldest one first, waiting for it if
 * need be (fz_det_admit).
 *
 * Ownership: the run set, the priorities, the step counter, the
 * fingerprint and the pool FIFO belong to carrier 0 and the fibers it
 * runs (one OS thread); only `arrivals` is shared, under its lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include "runtime/assert.h"
#include "runtime/det.h"
#include "runtime/dump.h"
#include "runtime/fiber.h"
#include "runtime/park.h"
#include "runtime/sched.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

/* Virtual time per scheduling point or clock read: a program that waits
 * for the clock in a loop sees it move (1 us: about what a system call and
 * a switch cost natively, so time-outs measured in loop turns stay of the
 * same order). */
#define DET_STEP_NS 1000u
/* Run-set slots mapped at first; doubled with mremap when full. */
#define HEAP_FIRST 1024u
/* Fingerprint: 64-bit FNV-1a over the ids of the fibers picked, in order. */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

bool fz_det_on;

static struct {
    uint64_t seed;
    uint64_t rng;
    unsigned depth;
    uint64_t change_at[FZ_DET_MAX_DEPTH]; /* ascending step numbers */
    unsigned changes, next_change;
    uint64_t steps, picks;
    uint64_t fingerprint;
    const char *report; /* the settings' file name (it outlives the run), or NULL */
    void (*dump)(int fd);
    int64_t wall_minus_mono; /* CLOCK_REALTIME - CLOCK_MONOTONIC at start */
    const char *outside;     /* the first input from outside, or NULL */
    /* run set: a max-heap on (priority, -id) */
    struct fz_fiber **heap;
    size_t len, cap;
    /* fibers whose call is out in the pool, oldest first (det_pool_next) */
    struct fz_fiber *pool_head, *pool_tail;
    /* woken by other threads, in arrival order (task.next) */
    fz_spinlock arrivals_lock;
    struct fz_task *arrivals;
    atomic_uint arrival_seq; /* bumped per arrival: the carrier's futex word */
} det;

/* splitmix64: small, fast, and every seed gives a different stream. */
static uint64_t next_random(void)
{
    uint64_t z = (det.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void fz_det_setup(const struct fz_det_settings *s)
{
    det.seed = s->seed;
    det.rng = s->seed;
    det.depth = s->depth < 1 ? 1 : s->depth > FZ_DET_MAX_DEPTH ? FZ_DET_MAX_DEPTH : s->depth;
    uint64_t k = s->steps ? s->steps : 1;
    /* d - 1 change points, uniform over 1..k, kept sorted */
    det.changes = det.depth - 1;
    for (unsigned i = 0; i < det.changes; i++) {
        uint64_t at = 1 + next_random() % k;
        unsigned j = i;
        while (j > 0 && det.change_at[j - 1] > at) {
            det.change_at[j] = det.change_at[j - 1];
            j--;
        }
        det.change_at[j] = at;
    }
    det.fingerprint = FNV_OFFSET;
    det.dump = s->dump;
    det.report = s->report;
    fz_virtual_ns = fz_real_now_ns();
    struct timespec wall;
    fz_os_clock_gettime(CLOCK_REALTIME, &wall);
    det.wall_minus_mono = (int64_t)fz_ts_to_ns(&wall) - (int64_t)fz_virtual_ns;
    fz_det_on = true;
}

static void tick(void)
{
    __atomic_store_n(&fz_virtual_ns, fz_virtual_ns + DET_STEP_NS, __ATOMIC_RELAXED);
}

/* Initial priorities are random and above DET_LOW; a change point sets the
 * running fiber's priority to one of 1..d-1, below all of them. */
#define DET_LOW (1ull << 32)

static uint64_t priority_of(struct fz_fiber *f)
{
    if (!f->det_prio)
        f->det_prio = DET_LOW + (next_random() >> 2);
    return f->det_prio;
}

static bool above(struct fz_fiber *a, struct fz_fiber *b)
{
    uint64_t pa = priority_of(a), pb = priority_of(b);
    return pa != pb ? pa > pb : a->id < b->id;
}

/* ---- the run set ----------------------------------------------------- */

static bool heap_grow(void)
{
    size_t cap = det.cap ? det.cap * 2 : HEAP_FIRST;
    void *p = det.heap ? mremap(det.heap, det.cap * sizeof *det.heap, cap * sizeof *det.heap,
                                MREMAP_MAYMOVE)
                       : mmap(NULL, cap * sizeof *det.heap, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    det.heap = p;
    det.cap = cap;
    return true;
}

static void heap_push(struct fz_fiber *f)
{
    if (det.len == det.cap && !heap_grow())
        fz_throw("deterministic scheduling: cannot map the run set", __FILE__, __LINE__);
    size_t i = det.len++;
    priority_of(f);
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!above(f, det.heap[up]))
            break;
        det.heap[i] = det.heap[up];
        i = up;
    }
    det.heap[i] = f;
}

static struct fz_fiber *heap_pop(void)
{
    if (!det.len)
        return NULL;
    struct fz_fiber *top = det.heap[0], *last = det.heap[--det.len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        struct fz_fiber *b = last;
        if (l < det.len && above(det.heap[l], b))
            best = l, b = det.heap[l];
        if (r < det.len && above(det.heap[r], b))
            best = r;
        if (best == i)
            break;
        det.heap[i] = det.heap[best];
        i = best;
    }
    if (det.len)
        det.heap[i] = last;
    return top;
}

void fz_det_push(struct fz_fiber *f, bool on_carrier)
{
    if (on_carrier) {
        heap_push(f);
        return;
    }
    fz_spin_lock(&det.arrivals_lock);
    struct fz_task **tail = &det.arrivals;
    while (*tail)
        tail = &(*tail)->next;
    f->task.next = NULL;
    *tail = &f->task;
    fz_spin_unlock(&det.arrivals_lock);
    atomic_fetch_add(&det.arrival_seq, 1);
    fz_futex_wake(&det.arrival_seq, 1);
}

bool fz_det_wait_arrival(uint64_t patience_ns)
{
    unsigned seen = atomic_load(&det.arrival_seq);
    uint64_t until = fz_real_now_ns() + patience_ns;
    while (!__atomic_load_n(&det.arrivals, __ATOMIC_ACQUIRE)) {
        uint64_t now = fz_real_now_ns();
        if (now >= until)
            return false;
        struct timespec ts = fz_ns_to_ts(until);
        fz_futex_wait(&det.arrival_seq, seen, &ts);
        seen = atomic_load(&det.arrival_seq);
    }
    return true;
}

static struct fz_fiber *picked(struct fz_fiber *f)
{
    if (f) {
        det.picks++;
        det.fingerprint = (det.fingerprint ^ f->id) * FNV_PRIME;
    }
    return f;
}

struct fz_fiber *fz_det_pick(void)
{
    return picked(heap_pop());
}

struct fz_fiber *fz_det_preempt(struct fz_fiber *self, bool forced)
{
    det.steps++;
    tick();
    while (det.next_change < det.changes && det.change_at[det.next_change] <= det.steps)
        self->det_prio = det.depth - ++det.next_change; /* d-1, d-2, ... 1 */
    if (!det.len || (!forced && !above(det.heap[0], self)))
        return NULL;
    return picked(heap_pop());
}

bool fz_det_program_clock(int clk, uint64_t *ns)
{
    bool wall;
    switch (clk) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
        wall = true;
        break;
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
        wall = false;
        break;
    default:
        return false;
    }
    /* the time moves even for a program that only reads the clock; reads
     * from threads that are not fibers see it without moving it */
    if (fz_det_on && fz_on_carrier())
        tick();
    uint64_t now = __atomic_load_n(&fz_virtual_ns, __ATOMIC_RELAXED);
    *ns = wall ? (uint64_t)((int64_t)now + det.wall_minus_mono) : now;
    return true;
}

void fz_det_after_fork(void)
{
    det.len = 0;
    det.pool_head = det.pool_tail = NULL;
    det.arrivals = NULL;
    det.arrivals_lock = (fz_spinlock){0};
}

/* ---- nothing runnable ------------------------------------------------ */

static bool take_arrival(const struct fz_fiber *want)
{
    fz_spin_lock(&det.arrivals_lock);
    struct fz_task **p = &det.arrivals;
    while (*p && (want && fz_fiber_of_task(*p) != want))
        p = &(*p)->next;
    struct fz_task *t = *p;
    if (t)
        *p = t->next;
    fz_spin_unlock(&det.arrivals_lock);
    if (t)
        heap_push(fz_fiber_of_task(t));
    return t != NULL;
}

bool fz_det_admit(bool *wait)
{
    *wait = false;
    if (det.pool_head) {
        if (take_arrival(det.pool_head))
            return true;
        *wait = true; /* its call is still out: wait for it, not for others */
        return false;
    }
    /* woken by a thread that is not a fiber: as it comes */
    if (__atomic_load_n(&det.arrivals, __ATOMIC_ACQUIRE) && take_arrival(NULL)) {
        fz_det_saw_outside("a wake-up from a thread that is not a fiber");
        return true;
    }
    return false;
}

void fz_det_advance_to(uint64_t deadline)
{
    if (deadline > fz_virtual_ns)
        __atomic_store_n(&fz_virtual_ns, deadline, __ATOMIC_RELAXED);
}

void fz_det_saw_outside(const char *what)
{
    if (!det.outside)
        det.outside = what;
}

void fz_det_pool_sent(struct fz_fiber *f)
{
    f->det_pool_next = NULL;
    if (det.pool_tail)
        det.pool_tail->det_pool_next = f;
    else
        det.pool_head = f;
    det.pool_tail = f;
}

void fz_det_pool_back(struct fz_fiber *f)
{
    struct fz_fiber **p = &det.pool_head, *prev = NULL;
    while (*p && *p != f)
        prev = *p, p = &(*p)->det_pool_next;
    if (!*p)
        return;
    *p = f->det_pool_next;
    if (det.pool_tail == f)
        det.pool_tail = prev;
}

/* A parked fiber that only a thread of this program can wake waits on an
 * address (a lock, a condition, a join, a semaphore) with no deadline and
 * no signal it waits for. */
static bool only_program_can_wake(const struct fz_fiber *f)
{
    const struct fz_waiter *w = f->waiter;
    return w && w->queued && !w->deadline && w->kind == FZ_WAIT_PLAIN &&
           !atomic_load_explicit(&f->sigwait_set, memory_order_relaxed);
}

bool fz_det_outside_can_wake(void)
{
    if (det.pool_head || __atomic_load_n(&det.arrivals, __ATOMIC_ACQUIRE))
        return true;
    for (struct fz_fiber *f = fz_fiber_all(); f; f = f->all_next) {
        int state = __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
        if (state == FZ_FIBER_RUNNABLE || (state == FZ_FIBER_PARKED && !only_program_can_wake(f)))
            return true; /* (runnable: woken by another thread just now) */
    }
    return false;
}

static void put(int fd, const char *s)
{
    fz_sys3(SYS_write, fd, s, strlen(s));
}

static char *utoa(uint64_t v, char *end, unsigned base)
{
    *--end = 0;
    do
        *--end = "0123456789abcdef"[v % base];
    while (v /= base);
    return end;
}

size_t fz_det_describe(char *buf, size_t len)
{
    char a[24], b[24], c[24];
    const char *parts[] = {" seed=",        utoa(det.seed, a + sizeof a, 10),
                           " steps=",       utoa(det.steps, b + sizeof b, 10),
                           " fingerprint=", utoa(det.fingerprint, c + sizeof c, 16),
                           " outside=",     det.outside ? "1" : "0"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        for (const char *p = parts[i]; *p && n + 1 < len; p++)
            buf[n++] = *p;
    if (len)
        buf[n] = 0;
    return n;
}

void fz_det_deadlock(void)
{
    char num[24];
    put(2, "fiberize: deadlock under --seed ");
    put(2, utoa(det.seed, num + sizeof num, 10));
    put(2, ": every thread waits for another one, and nothing else can wake one\n");
    if (det.dump) /* each thread: what it waits on, who holds it, where */
        det.dump(2);
    else
        fz_dump_write(2);
    fz_det_at_exit();
    /* as abort(): SIGABRT with its default action, which dumps core */
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } dfl = {SIG_DFL, 0, NULL, 0};
    uint64_t abrt = 1ull << (SIGABRT - 1);
    fz_sys4(SYS_rt_sigaction, SIGABRT, (long)&dfl, 0, 8);
    fz_sys4(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&abrt, 0, 8);
    fz_sys2(SYS_kill, fz_sys0(SYS_getpid), SIGABRT);
    fz_sys1(SYS_exit_group, 134);
    __builtin_unreachable();
}

void fz_det_at_exit(void)
{
    static int done;
    if (!fz_det_on || __atomic_exchange_n(&done, 1, __ATOMIC_RELAXED))
        return;
    char line[200];
    size_t n = fz_det_describe(line, sizeof line - 1);
    line[n++] = '\n';
    if (det.report) {
        int fd = (int)fz_sys4(SYS_openat, AT_FDCWD, (long)det.report,
                              O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            fz_sys3(SYS_write, fd, line + 1, n - 1); /* without the leading space */
            fz_sys1(SYS_close, fd);
        }
    }
    if (det.outside) {
        put(2, "fiberize: --seed: this run took input from outside the program (");
        put(2, det.outside);
        put(2, "); a replay may differ from there on\n");
    }
}
