/* The blocking pool.
 *
 * Ownership: a call (struct fz_pool_call) lives on the calling fiber's
 * stack.  It is in the queue (QUEUED), then owned by one pool thread
 * (RUNNING), then DONE; the pool lock guards the queue, the counters and
 * every state change before DONE.  After a pool thread stores DONE it only
 * unparks the call's address (a key: never dereferenced), so the fiber may
 * return and drop the frame as soon as it sees DONE.
 *
 * Threads: started on demand, one per queued call that finds no free
 * thread, up to FIBERIZE_POOL_MAX; an idle thread leaves after 10 s
 * without work (detaching itself), or at once when the runtime shrinks
 * back to one OS thread (fz_pool_retire_all, below: the shrinker joins
 * it, so the kernel counts one thread when fork or unshare follows, as
 * natively after a program joined its threads).  They are plain OS
 * threads with their own glibc TCB; they block every signal of the
 * program's (the program's threads receive those) but not libc's own
 * (runtime/tls.h): set*id must reach every thread, and the cancellation
 * signal is how a caller interrupts a call (below).
 *
 * Interrupting a call: when a signal handler or pthread_cancel ends the
 * caller's wait, a queued call is withdrawn unmade; a running interruptible
 * call gets libc's cancellation signal at its pool thread, whose handler (installed without
 * SA_RESTART) makes the blocking system call fail with EINTR, as the
 * program's handler would have natively.  The caller then waits for the
 * call to return.  The kick is sent under the pool lock and only while the
 * call is RUNNING, and a kicked thread makes one system call before its
 * next call (a pending kick is delivered there), so a kick never lands on
 * another caller's call.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "runtime/assert.h"
#include "runtime/park.h"
#include "runtime/det.h"
#include "runtime/pool.h"
#include "runtime/tls.h"
#include "runtime/sched.h"
#include "runtime/sigmask.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

enum { QUEUED = 1, RUNNING, DONE, WITHDRAWN };
enum { KICK_SIGNAL = FZ_LIBC_CANCEL_SIGNAL };
#define IDLE_RETIRE_NS (10ull * 1000000000ull)
/* libc's own signals stay deliverable on pool threads */
#define GLIBC_SIGNALS FZ_LIBC_SIGNALS

static struct {
    fz_spinlock lock;
    struct fz_pool_call *head, *tail;
    unsigned queued;       /* calls in the queue */
    unsigned threads;      /* pool threads alive (or being started) */
    unsigned free;         /* of those, not making a call */
    unsigned asleep;       /* of those, asleep on work_word */
    atomic_uint work_word; /* idle threads sleep on it; bumped per wake */
    unsigned long calls;   /* for FIBERIZE_STATS */
    unsigned peak;
    unsigned max_threads; /* fz_pool_configure's, read-only afterwards */
    /* fz_pool_retire_all: set by the shrinker while it ends every thread */
    bool retiring;
    struct departure *departed; /* threads that left for it, to be joined */
    atomic_uint departures;     /* the shrinker sleeps on it; bumped per departure */
} pool;

/* A thread leaving because the pool retires, on its own stack: it waits
 * there until the shrinker has read `thread` and `tid` (taken), then
 * returns. */
struct departure {
    pthread_t thread;
    pid_t tid;
    atomic_uint taken;
    struct departure *next; /* pool lock */
};

void fz_pool_configure(unsigned max_threads)
{
    pool.max_threads = max_threads;
}

/* ---- the queue (pool lock held) ---------------------------------------- */

static void enqueue(struct fz_pool_call *call)
{
    FZ_ASSERT(fz_spin_held(&pool.lock));
    call->next = NULL;
    if (pool.tail)
        pool.tail->next = call;
    else
        pool.head = call;
    pool.tail = call;
    pool.queued++;
}

static struct fz_pool_call *dequeue(void)
{
    FZ_ASSERT(fz_spin_held(&pool.lock));
    struct fz_pool_call *call = pool.head;
    if (!call)
        return NULL;
    pool.head = call->next;
    if (!pool.head)
        pool.tail = NULL;
    pool.queued--;
    return call;
}

static void withdraw(struct fz_pool_call *call)
{
    FZ_ASSERT(fz_spin_held(&pool.lock));
    struct fz_pool_call **link = &pool.head, *prev = NULL;
    while (*link != call) {
        prev = *link;
        link = &(*link)->next;
    }
    *link = call->next;
    if (pool.tail == call)
        pool.tail = prev;
    pool.queued--;
}

/* ---- pool threads ------------------------------------------------------- */

static void set_kernel_mask(uint64_t mask)
{
    fz_sys4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8);
}

static void make_call(struct fz_pool_call *call)
{
    if (call->flags & FZ_POOL_CALLER_MASK)
        set_kernel_mask(call->mask & ~GLIBC_SIGNALS);
    errno = call->err;
    h_errno = call->herr;
    call->run(call);
    call->err = errno;
    call->herr = h_errno;
    if (call->flags & FZ_POOL_CALLER_MASK)
        set_kernel_mask(~GLIBC_SIGNALS);
}

static void finish(struct fz_pool_call *call)
{
    fz_spin_lock(&pool.lock);
    bool kicked = call->kicked;
    atomic_store_explicit(&call->state, DONE, memory_order_release);
    pool.free++;
    fz_spin_unlock(&pool.lock);
    fz_unpark_addr(&call->state, ~0u, 1);
    if (kicked) /* a kick still in flight is delivered here, not later */
        fz_sys0(SYS_getpid);
}

/* Wait for work; NULL once the thread has left the counts and must exit:
 * after IDLE_RETIRE_NS without any (leaving alone, *departing NULL), or
 * because the pool retires (*departing is on the departed list).  A
 * queued call is taken first even then: nothing queued is left unmade. */
static struct fz_pool_call *next_call(pid_t tid, struct departure *d, struct departure **departing)
{
    uint64_t idle_since = fz_real_now_ns();
    *departing = NULL;
    fz_spin_lock(&pool.lock);
    for (;;) {
        struct fz_pool_call *call = dequeue();
        if (call) {
            pool.free--;
            atomic_store_explicit(&call->state, RUNNING, memory_order_relaxed);
            call->tid = tid;
            fz_spin_unlock(&pool.lock);
            return call;
        }
        bool retire = pool.retiring;
        if (retire || fz_real_now_ns() - idle_since >= IDLE_RETIRE_NS) {
            pool.threads--;
            pool.free--;
            if (retire) {
                d->next = pool.departed;
                pool.departed = d;
                *departing = d;
                atomic_fetch_add(&pool.departures, 1);
                fz_futex_wake(&pool.departures, 1);
            }
            fz_spin_unlock(&pool.lock);
            return NULL;
        }
        unsigned seen = atomic_load(&pool.work_word);
        pool.asleep++;
        fz_spin_unlock(&pool.lock);
        struct timespec until = fz_ns_to_ts(idle_since + IDLE_RETIRE_NS);
        fz_futex_wait(&pool.work_word, seen, &until);
        fz_spin_lock(&pool.lock);
        pool.asleep--;
    }
}

static void *pool_thread(void *arg)
{
    (void)arg;
    set_kernel_mask(~GLIBC_SIGNALS);
    pid_t tid = (pid_t)fz_sys0(SYS_gettid);
    struct departure d = {.thread = pthread_self(), .tid = tid};
    struct departure *departing;
    struct fz_pool_call *call;
    while ((call = next_call(tid, &d, &departing))) {
        make_call(call);
        finish(call);
    }
    if (!departing) {
        fz_os_thread_detach(pthread_self()); /* no one will join it */
        return NULL;
    }
    while (!atomic_load(&d.taken)) /* the shrinker reads d, then joins */
        fz_futex_wait(&d.taken, 0, NULL);
    return NULL;
}

/* Pool lock held.  True if a new thread must be started for the call just
 * queued (pool.threads counts it already). */
static bool need_new_thread(void)
{
    if (pool.free >= pool.queued) {
        if (pool.asleep) {
            atomic_fetch_add(&pool.work_word, 1);
            fz_futex_wake(&pool.work_word, 1);
        }
        return false; /* a free thread that is awake looks at the queue next */
    }
    FZ_ASSERT(fz_spin_held(&pool.lock));
    FZ_ASSERT(pool.max_threads > 0); /* fz_pool_configure ran */
    if (pool.threads >= pool.max_threads)
        return false; /* it waits for a thread to come free */
    if (++pool.threads > pool.peak)
        pool.peak = pool.threads;
    pool.free++; /* free until it takes a call */
    return true;
}

static bool start_thread(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr); /* joinable: fz_pool_retire_all joins it */
    bool ok = fz_os_thread_start(&t, &attr, pool_thread, NULL) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

/* ---- interrupting a running call ---------------------------------------- */

static void on_kick(int sig, siginfo_t *info, void *uctx)
{
    (void)sig, (void)info, (void)uctx; /* being here made the call fail with EINTR */
}

/* The kick signal (libc's cancellation signal) must have a handler without
 * SA_RESTART.  libc installs its own (with SA_RESTART) the first time the
 * program cancels a thread that is not a fiber, so this is checked before
 * every kick.  libc's handler does nothing on a thread nobody cancelled,
 * and keeps working without SA_RESTART. */
static bool kick_handler_ready(void)
{
    struct fz_kernel_sigaction k;
    if (fz_sys4(SYS_rt_sigaction, KICK_SIGNAL, NULL, &k, 8) != 0)
        return false;
    if (k.handler == (void *)SIG_DFL || k.handler == (void *)SIG_IGN) {
        k = (struct fz_kernel_sigaction){on_kick, SA_SIGINFO | FZ_SA_RESTORER, fz_signal_restorer,
                                         0};
    } else if (k.flags & SA_RESTART) {
        k.flags &= ~(unsigned long)SA_RESTART;
    } else {
        return true;
    }
    return fz_sys4(SYS_rt_sigaction, KICK_SIGNAL, &k, NULL, 8) == 0;
}

/* The caller's wait ended early.  False if the call was withdrawn unmade. */
static bool interrupt(struct fz_pool_call *call)
{
    bool kickable = (call->flags & FZ_POOL_INTERRUPTIBLE) && kick_handler_ready();
    fz_spin_lock(&pool.lock);
    int state = atomic_load_explicit(&call->state, memory_order_relaxed);
    if (state == QUEUED) {
        withdraw(call);
        atomic_store_explicit(&call->state, WITHDRAWN, memory_order_relaxed);
    } else if (state == RUNNING && kickable) {
        call->kicked = true;
        fz_sys3(SYS_tgkill, fz_rt.pid, call->tid, KICK_SIGNAL);
    }
    fz_spin_unlock(&pool.lock);
    return state != QUEUED;
}

/* ---- the caller's side -------------------------------------------------- */

static bool not_done(void *ctx)
{
    struct fz_pool_call *call = ctx;
    return atomic_load_explicit(&call->state, memory_order_acquire) != DONE;
}

/* Wait for DONE.  A kick can reach the pool thread just before it enters
 * the blocking call (then the call blocks anyway): kick again a few times. */
static void wait_done(struct fz_pool_call *call, int intr)
{
    unsigned rekicks = 0;
    uint64_t pause = 1000000;
    while (not_done(call)) {
        bool rekick = call->kicked && rekicks < 8;
        uint64_t deadline = rekick ? fz_now_ns() + pause : 0;
        int r = fz_park_addr(&call->state, ~0u, not_done, call, deadline, intr);
        if (r == EINTR && !interrupt(call))
            return;
        if (r == ETIMEDOUT && rekick) {
            rekicks++;
            pause *= 2;
            interrupt(call);
        }
        intr = FZ_INTR_NONE; /* one interruption is all a call can report */
    }
}

/* Last resort when no pool thread can start: block the carrier (the
 * monitor hands its other fibers to a spare). */
static void run_inline(struct fz_pool_call *call)
{
    atomic_store(&call->state, RUNNING);
    call->run(call);
    call->err = errno;
    call->herr = h_errno;
    atomic_store(&call->state, DONE);
}

bool fz_pool_run(struct fz_pool_call *call)
{
    struct fz_fiber *self = fz_self();
    call->err = errno;
    call->herr = h_errno;
    call->kicked = false;
    if (call->flags & FZ_POOL_CALLER_MASK)
        call->mask = self ? fz_sigmask_of(self) : 0;
    atomic_store_explicit(&call->state, QUEUED, memory_order_relaxed);
    if (!self) {
        run_inline(call);
        return true;
    }
    fz_spin_lock(&pool.lock);
    enqueue(call);
    pool.calls++;
    bool start = need_new_thread();
    fz_spin_unlock(&pool.lock);
    if (start && !start_thread()) {
        fz_spin_lock(&pool.lock);
        pool.threads--;
        pool.free--;
        bool orphan = pool.threads == 0 && atomic_load(&call->state) == QUEUED;
        if (orphan)
            withdraw(call);
        fz_spin_unlock(&pool.lock);
        if (orphan) {
            run_inline(call);
            errno = call->err;
            h_errno = call->herr;
            return true;
        }
    }
    if (fz_det_on) /* --seed: calls come back oldest first (det.c) */
        fz_det_pool_sent(self);
    wait_done(call, call->intr);
    if (fz_det_on)
        fz_det_pool_back(self);
    bool made = atomic_load(&call->state) == DONE;
    errno = made ? call->err : EINTR;
    if (made)
        h_errno = call->herr;
    return made;
}

void fz_pool_snapshot(struct fz_pool_snapshot *s)
{
    fz_spin_lock(&pool.lock);
    s->calls = pool.calls;
    s->threads = pool.threads;
    s->busy = pool.threads - pool.free;
    s->queued = pool.queued;
    s->peak = pool.peak;
    fz_spin_unlock(&pool.lock);
}

void fz_pool_describe(const struct fz_pool_call *call, char *buf, size_t len)
{
    fz_spin_lock(&pool.lock);
    int state = atomic_load(&call->state);
    pid_t tid = call->tid;
    fz_spin_unlock(&pool.lock);
    if (state == RUNNING)
        snprintf(buf, len, "running on pool thread %d", (int)tid);
    else if (state == QUEUED)
        snprintf(buf, len, "queued");
    else
        snprintf(buf, len, "done");
}

bool fz_pool_retire_all(void)
{
    fz_spin_lock(&pool.lock);
    FZ_ASSERT(!pool.retiring && !pool.departed);
    if (pool.queued || pool.free != pool.threads) {
        fz_spin_unlock(&pool.lock);
        return false; /* a call is being made: not the time */
    }
    pool.retiring = pool.threads > 0;
    if (pool.asleep) {
        atomic_fetch_add(&pool.work_word, 1);
        fz_futex_wake(&pool.work_word, INT_MAX);
    }
    while (pool.threads || pool.departed) {
        struct departure *d = pool.departed;
        if (d) {
            pool.departed = d->next;
            pthread_t thread = d->thread;
            pid_t tid = d->tid;
            fz_spin_unlock(&pool.lock);
            atomic_store(&d->taken, 1); /* d is gone once the thread sees this */
            fz_futex_wake(&d->taken, 1);
            fz_os_thread_join(thread, NULL);
            fz_os_thread_wait_gone(tid);
            fz_spin_lock(&pool.lock);
            continue;
        }
        unsigned seen = atomic_load(&pool.departures);
        fz_spin_unlock(&pool.lock);
        fz_futex_wait(&pool.departures, seen, NULL);
        fz_spin_lock(&pool.lock);
    }
    pool.retiring = false;
    fz_spin_unlock(&pool.lock);
    return true;
}

void fz_pool_after_fork(void)
{
    unsigned max_threads = pool.max_threads; /* a setting, not state */
    memset(&pool, 0, sizeof pool);
    pool.max_threads = max_threads;
}
