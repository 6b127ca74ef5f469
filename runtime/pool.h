/* The blocking pool: OS threads that make the calls a fiber cannot make
 * without blocking its carrier (DNS, fsync, lock waits, waits for any
 * child).  A fiber hands its call over and parks until a pool thread has
 * made it.  syscalls/offload.h is the way interposers use it. */
#ifndef FZ_POOL_H
#define FZ_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum fz_pool_flags {
    /* A signal handler or pthread_cancel may end the call early: the pool
     * thread is interrupted (the call fails with EINTR, as natively). */
    FZ_POOL_INTERRUPTIBLE = 1u << 0,
    /* The call starts processes: make it with the caller's signal mask,
     * which children inherit. */
    FZ_POOL_CALLER_MASK = 1u << 1,
};

struct fz_pool_call {
    void (*run)(struct fz_pool_call *); /* made on a pool thread */
    void *ctx;
    unsigned flags; /* enum fz_pool_flags */
    int intr;       /* enum fz_intr of the caller's wait */
    int err;        /* errno: the caller's on the way in, the call's out */
    int herr;       /* h_errno, likewise */
    void **args;    /* its arguments when known (offloads), for dumps */
    /* the pool's own (guarded by the pool lock) */
    atomic_int state;
    pid_t tid;     /* pool thread making the call */
    uint64_t mask; /* caller's signal mask (FZ_POOL_CALLER_MASK) */
    bool kicked;
    struct fz_pool_call *next;
};

/* The most pool threads alive at once (FIBERIZE_POOL_MAX), set once
 * before the first call. */
void fz_pool_configure(unsigned max_threads);

/* Make call->run(call) on a pool thread; the calling fiber parks meanwhile.
 * errno and h_errno travel both ways.  Returns true if the call was made,
 * false if a signal or cancellation (call->intr) ended the wait before a
 * pool thread took it: then it was not made at all. */
bool fz_pool_run(struct fz_pool_call *call);

/* A consistent look at the pool, for dumps and stats. */
struct fz_pool_snapshot {
    unsigned long calls; /* made so far */
    unsigned threads, busy, queued, peak;
};
void fz_pool_snapshot(struct fz_pool_snapshot *s);
/* For dumps: where call is now ("queued", "running on pool thread 1234").
 * The caller holds the calling fiber parked, so call is alive. */
void fz_pool_describe(const struct fz_pool_call *call, char *buf, size_t len);

/* From the runtime shrinking back to one OS thread (sched.c), the only
 * fiber calling: end every pool thread and join it.  False, ending none,
 * if a call is queued or being made.  A thread that left on its own idle
 * timer just before is detached, not joined: it may still be leaving the
 * kernel when this returns. */
bool fz_pool_retire_all(void);

/* fork child: the parent's pool threads do not exist here. */
void fz_pool_after_fork(void);

#endif
