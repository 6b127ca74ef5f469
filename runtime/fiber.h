/* Fibers and carriers: the two objects every runtime file shares.
 *
 * A fiber is a program thread (pthread_create, or the adopted main thread)
 * with its own stack and its own glibc TCB (runtime/tls_glibc.c).  A carrier is an
 * OS thread that runs fibers.  Ownership:
 *   - a fiber's context (sp) belongs to whoever runs it; `on_cpu` is 1 from
 *     the moment a carrier decides to run it until fz_switch has saved it, and
 *     a carrier that wants to resume a fiber waits for on_cpu == 0 first.  So
 *     a fiber may be made runnable (fz_unpark) before it finished switching
 *     out, which is what makes direct fiber-to-fiber switches race-free.
 *   - `carrier` is written only by the carrier that resumes the fiber.
 *   - every field under "thread" is protected by the fiber's own `lock`,
 *     except the start arguments (written before the fiber is published).
 * No runtime state lives in __thread: with per-fiber TCBs a __thread variable
 * in this library would be per fiber, not per carrier.
 */
#ifndef FZ_FIBER_H
#define FZ_FIBER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include "runtime/assert.h"
#include <sched.h>
#include <signal.h>
#include "runtime/runq.h"
#include "runtime/spinlock.h"
#include "runtime/stack.h"
#include "runtime/stats.h"
#include "runtime/timer.h"

struct fz_carrier;
struct fz_waiter;

/* The siginfo of a signal sent to one fiber (pthread_sigqueue, tgkill
 * through syscall(2) with a forged one); slots are claimed lock-free
 * (sigthread.c). */
#define FZ_SIGSLOTS 4
struct fz_sigslot {
    atomic_int state; /* 0 free, 1 being written, 2 holds sig's info */
    int sig;
    int code;
    pid_t pid;
    uid_t uid;
    union sigval value;
};

/* A program signal handler running on a fiber: where its frame is, so a
 * longjmp out of it can be recognised (syscalls/signal.c). */
#define FZ_HANDLER_DEPTH 8
struct fz_handler_frame {
    void *sp;
    bool on_altstack;
};

/* exit_word values: RUNNING from creation until fz_fiber_reap has released
 * the stack after the fiber's last switch, then REAPED; joiners park on the
 * word until it is REAPED.  There is no value in between. */
enum { FZ_EXIT_RUNNING = 0, FZ_EXIT_REAPED = 2 };

enum fz_fiber_state {
    FZ_FIBER_RUNNABLE,
    FZ_FIBER_RUNNING,
    FZ_FIBER_PARKED,
    FZ_FIBER_DONE,
};

struct fz_fiber {
    void *sp; /* saved stack pointer while switched out */
    atomic_int on_cpu;
    /* 1 while a dump reads the saved context: a carrier about to resume the
     * fiber waits (sched.c's claim_cpu, runtime/dump.c).  Kept across
     * recycling: only the dump writes it. */
    atomic_int dump_hold;
    struct fz_task task; /* run-queue link */
    struct fz_carrier *carrier;
    void *tcb; /* thread pointer: also the pthread_t */
    uint64_t id;
    int state;
    bool is_main;
    /* between vfork's return in the child and its exec or _exit: the child
     * runs on this fiber's stack and TCB, and must never park (it is not
     * this fiber); written by the child, cleared by the parent when vfork
     * returns there (syscalls/process.c) */
    bool vfork_child;

    /* stack */
    struct fz_stack stack;

    /* thread */
    fz_spinlock lock;
    void *(*start)(void *);
    void *arg;
    bool detached;
    bool exited;
    bool joined;           /* a joiner has claimed the result */
    atomic_uint exit_word; /* parking-lot key for joiners: FZ_EXIT_RUNNING, _REAPED */
    char name[16];
    uint64_t sigmask;                /* this thread's signal mask (runtime/sigmask.c) */
    uint64_t sigmask_counted;        /* the mask counted in fz_rt.unblocked_by (sigmask.c) */
    struct fz_waiter *cancel_waiter; /* its wait at a cancellation point (park.c) */
    atomic_uint intr_window;         /* its interruptible call in progress (park.c) */
    size_t guard_requested;          /* reported by pthread_getattr_np, as glibc does */
    void *asan_save;                 /* FZ_ASAN builds: its fake stack while switched out */
    unsigned shared_nap_ns;          /* process-shared condvar polling (syscalls/cond.c) */
    /* its scheduling policy and priority as the kernel's calls would
     * report them (syscalls/schedpolicy.c), and glibc's pthread-level copy
     * (sched_cached: which of the two it holds): set at creation from the
     * creator's, then under `lock`, by the fiber or a pthread_setschedparam
     * naming it; sched_known false until one was set */
    int sched_policy, sched_priority;
    bool sched_known;
    uint8_t sched_cached;
    int cached_policy, cached_priority;

    /* identity and signals sent to this thread (runtime/identity.c, sigthread.c) */
    pid_t tid;                                /* what gettid() says; fixed for its life */
    struct fz_fiber *_Atomic tid_next;        /* tid table chain (identity.c) */
    atomic_ullong sig_pending;                /* sent to it, not yet delivered: bit sig-1 */
    struct fz_sigslot sig_slots[FZ_SIGSLOTS]; /* their siginfo, when not pthread_kill's */
    atomic_ullong sigwait_set;                /* signals its sigwait takes: they wake it */
    atomic_ullong sig_retired;                /* pending ones sent under a handler since replaced by
                                                 SIG_DFL: they run that handler (syscalls/signal.c) */
    uint64_t cpu_ns;                          /* CPU time charged to it (runtime/cputime.c) */
    uint64_t cpu_reported;                    /* the most any reading of it said (cputime.c) */
    cpu_set_t *affinity;    /* its CPU mask when it set one (runtime/affinity.c) */
    unsigned affinity_gen;  /* 0: the process's mask */
    stack_t altstack;       /* its sigaltstack (runtime/altstack.c) */
    struct fz_waiter *wait; /* its innermost wait, under `lock` (park.c) */
    unsigned handled;       /* handlers run on it (sigsuspend counts) */
    unsigned handler_depth; /* program handlers running on it now */
    struct fz_handler_frame handler_frames[FZ_HANDLER_DEPTH]; /* (syscalls/signal.c) */
    bool entered;              /* started: its handlers may run (fiber.c) */
    volatile bool sig_raising; /* raising its own pending signal (sigthread.c) */
    /* for fiber dumps (runtime/dump.c): written by the fiber itself, read
     * by the dump only while it holds the fiber switched out */
    struct fz_waiter *waiter;  /* its wait while parked, NULL otherwise */
    uint64_t parked_at;        /* CLOCK_MONOTONIC_COARSE ns of its last park */
    void *created_at;          /* return address in the code that created it */
    struct fz_fiber *all_next; /* every fiber struct ever made (never freed) */
    /* under fiberize --seed (runtime/det.c), carrier 0's: */
    uint64_t det_prio;                     /* its PCT priority, 0 until first needed */
    struct fz_fiber *det_pool_next;        /* next fiber with a call out in the pool */
    bool det_on_fd;                        /* parked on an fd: counted in det_fd_waiters */
} __attribute__((aligned(FZ_CACHE_LINE))); /* whole cache lines, for aligned_alloc */

/* Why the hand-off monitor found a carrier stuck (runtime/monitor.c).  The
 * stats count hand-offs by it, so a run that started many spares says
 * which rule started them. */
enum fz_stuck {
    FZ_NOT_STUCK,
    FZ_STUCK_IN_CALL,   /* a call made in place lasted the threshold */
    FZ_STUCK_COMPUTING, /* one fiber on the CPU for a whole hand-off period */
    FZ_STUCK_ASLEEP,    /* asleep in the kernel a whole period: a wait no interposer saw */
    FZ_STUCK_DISK,      /* in an uninterruptible sleep at two looks in a row */
    FZ_STUCK_UNREAD,    /* its CPU clock or its /proc state could not be read */
    FZ_STUCK_REASONS
};

struct fz_carrier {
    unsigned index;
    struct fz_fiber *current;       /* fiber running here, NULL on the idle context */
    _Atomic(struct fz_task *) lifo; /* just-woken fiber: runs next; another
                                       carrier takes it if the waker keeps
                                       this carrier (runq.h, sched.c) */
    struct fz_runq runq;
    void *idle_sp;             /* saved idle context */
    void *own_tcb;             /* TCB loaded while idle (signal handlers run on it) */
    void *loaded_tcb;          /* thread pointer currently loaded on this OS thread */
    struct fz_fiber *dead;     /* exited fiber whose stack is released after the switch */
    struct fz_fiber *det_next; /* --seed: the fiber a scheduling point chose (det.c) */
    unsigned det_fd_waiters;   /* --seed: fibers parked on fds (sched.h) */
    struct fz_fiber *handoff;  /* picked while still switching out elsewhere: the idle
                                  context runs it (sched.c's switch_away) */
    atomic_int park_word;      /* futex word for idle sleeping */
    struct fz_carrier *next_idle;
    atomic_int in_idle_list;
    bool driving;   /* sleeping in the driver rather than on park_word */
    bool fd_parked; /* its last fiber parked on an fd (own thread only) */
    unsigned tick;
    uint32_t rng;
    pid_t tid;
    pthread_t thread;
    /* hand-off (runtime/monitor.c) */
    atomic_uint epoch;  /* bumped at every switch: the monitor's sign of life */
    bool spare;         /* started by the monitor; retires when not needed */
    atomic_int retired; /* spare sleeping on retire_word */
    atomic_int retire_word;
    bool no_thread;      /* monitor only: a spare slot whose OS thread failed to start */
    uint8_t stuck;       /* enum fz_stuck: the monitor's own view (only it writes) */
    unsigned seen_epoch; /* monitor only */
    uint64_t seen_since; /* monitor only */
    uint64_t seen_cpu_at, seen_cpu_ns; /* monitor only: when it read the thread's
                                          CPU clock in this run, and the reading */
    bool seen_disk_wait;               /* monitor only: this run was in state D at a look */
    /* a call made in place that may block (fz_blocking_enter): its fiber
     * (NULL when none) and since when; written by the fiber, read by the
     * monitor, which hands the carrier off once the call lasts long */
    _Atomic(struct fz_fiber *) blocking_fiber;
    atomic_ullong blocking_since;
    atomic_uint blocking_seq;   /* calls begun here: the monitor's sign of such calls */
    unsigned seen_blocking_seq; /* monitor only */
    /* 1 while the carrier releases an exited fiber's stack (munmap, which
     * waits for the process's mmap lock): written by the carrier, read by
     * the monitor, which starts no spare for it (a spare would wait for
     * the same lock) */
    atomic_int releasing_stack;
    /* 1 once its OS thread has left the scheduler to exit, the runtime
     * shrinking back to one OS thread (sched.c): set by that thread, read
     * by carrier 0 and the main fiber, reset by the main fiber */
    atomic_int left;
    uint64_t kernel_mask; /* signal mask loaded on this OS thread (sigmask.c) */
    uint64_t cpu_mark;    /* its thread CPU clock at the last switch (cputime.c) */
    bool cpu_valid;
    unsigned affinity_gen; /* CPU mask loaded on this OS thread (affinity.c) */
    stack_t altstack;      /* sigaltstack loaded on this OS thread (altstack.c) */
    /* 1 while its fiber waits for a runtime lock another carrier holds
     * (driver.c): not the fiber's own run, for the monitor.  Written by
     * this carrier only. */
    atomic_uchar waiting_runtime_lock;
    volatile bool sched_busy;    /* in scheduler code between fibers: a signal for its
                                    fiber waits for the switch-in (sigthread.c) */
    volatile bool reading_clock; /* runtime code on its fiber is in libc's or the vDSO's
                                    clock (fz_clock_on): a signal waits likewise.
                                    This OS thread only, writer and reader. */
    struct fz_stack idle_stack;  /* carrier 0 only: the main thread's stack is the main fiber's */
    void *asan_thread;           /* FZ_ASAN builds (runtime/asan.c) */
    struct fz_stack asan_idle;
    void *asan_idle_save;
    struct fz_stack_cache stacks;
    struct fz_stats stats;
} __attribute__((aligned(FZ_CACHE_LINE))); /* carriers[] elements share no line */

/* aligned_alloc(3) wants a size that is a multiple of the alignment; a
 * carrier's hot fields must not share a line with its neighbour's. */
_Static_assert(sizeof(struct fz_fiber) % FZ_CACHE_LINE == 0, "fz_fiber: whole cache lines");
_Static_assert(sizeof(struct fz_carrier) % FZ_CACHE_LINE == 0, "fz_carrier: whole cache lines");
/* fz_ctx_prepare lays out the frame switch.S pops: 8-byte words. */
_Static_assert(sizeof(uint64_t) == sizeof(void *), "switch.S saves 8-byte registers");

static inline struct fz_fiber *fz_fiber_of_task(struct fz_task *t)
{
    return (struct fz_fiber *)((char *)t - offsetof(struct fz_fiber, task));
}

/* The running fiber, or NULL when the caller is not a fiber (runtime off, a
 * carrier's idle context, a pool or foreign thread).  Found through the TCB,
 * so it is right after migrations and costs two loads. */
struct fz_fiber *fz_self(void);
/* True on a carrier's OS thread (running a fiber or idle); false on a
 * thread that is not one (pool, glibc's helpers).  Safe in a handler. */
bool fz_on_carrier(void);

/* Low-level switch (switch.S). */
void fz_switch(void **save_sp, void *load_sp, atomic_int *release_flag);
void fz_fiber_trampoline(void);

/* Lay out a fresh context on `stack` whose first switch-in calls
 * entry(arg) (which must never return).  Returns the initial sp. */
void *fz_ctx_prepare(struct fz_stack *stack, void (*entry)(void *), void *arg);

/* Fiber life cycle (fiber.c). */
struct fz_fiber_attr {
    size_t stack_size, guard_size; /* 0 = defaults */
    void *user_stack;              /* pthread_attr_setstack: lowest address */
    size_t user_stack_size;
    bool detached;
    void *created_at; /* the creating call's return address, for dumps */
};
/* A new runnable-to-be fiber (not yet scheduled); 0 or an errno value. */
int fz_fiber_create(void *(*start)(void *), void *arg, const struct fz_fiber_attr *attr,
                    struct fz_fiber **out);
struct fz_fiber *fz_fiber_adopt_main(void);
/* On the scheduler path after the fiber's final switch: release its stack,
 * then wake joiners or recycle it if detached. */
void fz_fiber_reap(struct fz_carrier *c, struct fz_fiber *f);
/* Give a joined (or detached and reaped) fiber back to the pool. */
void fz_fiber_free(struct fz_fiber *f);
/* Entry of every fiber (through fz_fiber_trampoline). */
__attribute__((noreturn)) void fz_fiber_main(void *fiber);
/* The running fiber ends: destructors, then leave for good. */
__attribute__((noreturn)) void fz_fiber_exit(struct fz_fiber *self);

/* fork child: forget the free-fiber pool; self is the only fiber left. */
void fz_fiber_after_fork(struct fz_fiber *self);

/* Every fiber struct ever made, live or pooled, newest first: a list that
 * only grows (fibers are recycled, never freed), so a dump may walk it
 * from any thread without a lock. */
struct fz_fiber *fz_fiber_all(void);

/* The real functions behind two that libfiberize interposes, set by
 * preload/ before the runtime starts: the runtime sits below the
 * interposers and never calls them (the interposed pthread_create would make
 * a fiber, pthread_getattr_np would describe one). */
extern int (*fz_os_thread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
extern int (*fz_os_thread_getattr)(pthread_t, pthread_attr_t *);

/* How the runtime starts an OS thread of its own (carrier, monitor, pool,
 * observer): fz_os_thread_create, then whatever libc changed in a process
 * that has just become multi-threaded is taken over again
 * (fz_tls_threads_started: after fz_tls_alone, glibc re-installs its
 * set*id handler at its next thread). */
int fz_os_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
/* The same for a thread that never exits (carriers, the monitor): on a
 * stack of the runtime's, wiped in fork children below the thread's first
 * frame (runtime/osthread.c).  Returns once the thread has marked it; 0 or
 * an errno value, as pthread_create. */
int fz_os_thread_start_lasting(pthread_t *t, void *(*fn)(void *), void *arg);
/* Join a thread so started whose function has returned, unmap its stack
 * and wait until it has left the process (fz_os_thread_wait_gone); 0 or
 * pthread_join's errno value. */
int fz_os_thread_join_lasting(pthread_t t);
/* After a join: wait (a bounded while) until the kernel no longer counts
 * OS thread tid in the process. */
void fz_os_thread_wait_gone(pid_t tid);
/* libc's own pthread_join (set by the interposer, as fz_os_thread_create). */
extern int (*fz_os_thread_join)(pthread_t, void **);
/* libc's own pthread_detach, for a thread of the runtime that leaves with
 * no one to join it (an idle pool thread). */
extern int (*fz_os_thread_detach)(pthread_t);

#endif
