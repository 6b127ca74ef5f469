/* The driver loop: epoll + timer wheel.
 *
 * Invariants:
 *  - the driver role (`held`) is owned by at most one carrier, which is the
 *    only one that calls epoll_wait; it sleeps with the nearest timer
 *    deadline as timeout, so an idle program makes no system calls at all
 *    until something is due;
 *  - the wheel is guarded by `timer_lock`; `next_deadline` caches its
 *    earliest deadline so carriers can test "anything due?" without the lock;
 *  - a waker that finds the driver asleep writes the eventfd, which is
 *    registered edge-triggered and never read: every write is a new edge;
 *  - carriers going idle may peek (non-blocking epoll_wait) while the driver
 *    sleeps; each edge goes to one poller, and a peek that takes the
 *    driver's wake-up edge writes a new one;
 *  - timers fire by claiming their waiter under the lock; the claimed
 *    waiters are made runnable after the lock is dropped (a waiter cannot run
 *    again, and so cannot reuse its frame, before that).  Firing goes in
 *    batches of FIRE_BATCH, the lock dropped between them.
 * Everything here uses raw syscalls: it runs on the scheduler path.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "runtime/driver.h"
#include "runtime/fiber.h"
#include "runtime/ownfd.h"
#include "runtime/park.h"
#include "runtime/reactor.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

#define EVENTS_PER_POLL 256
/* A poll from a busy carrier runs on a fiber's stack, which may be small. */
#define EVENTS_PER_BUSY_POLL 32
/* Fd tokens are gen << 32 | fd with fd < 2^20, so they never equal this
 * (and fd 0 of generation 0 has token 0, so 0 cannot mark the eventfd). */
#define WAKE_TOKEN UINT64_MAX
/* Timers moved (fired or cascaded) per hold of timer_lock.  Every fiber
 * that sleeps arms a timer under that lock, a spinlock meant for a few
 * dozen instructions, but one upper slot of the wheel can hold every timer
 * armed: many_sleepers (100,000 threads napping 100-150 ms) held it over
 * 200 us 1,855 times in one run, 89 ms at most, every arming fiber
 * spinning meanwhile.  A timer moved costs a cache and TLB miss or two
 * (each sits on its own fiber's stack).  Holds measured in that program on
 * a 2-vCPU VM, p50/p90/p99: 32 timers 19/48/222 us; 64 27/92/358; 16
 * 10/24/112.  The longest, ~10 ms whatever the batch, are the holder
 * preempted. */
#define FIRE_BATCH 32u

static struct {
    int epfd, wakefd;
    atomic_int held;
    atomic_int sleeping;
    atomic_int wake_sent;
    atomic_int wake_pending;           /* a wake asked for before the driver slept */
    atomic_uint_least64_t sleep_until; /* deadline the sleeping driver will wake at */
    fz_spinlock timer_lock;
    struct fz_wheel wheel;
    atomic_uint_least64_t next_deadline;
    atomic_int firing; /* a carrier is in fz_timers_fire (set and cleared by it) */
} d;

/* Runs single-threaded (start-up, fork child): the two fds are placed out
 * of the program's reach (runtime/ownfd.h), or the first program that
 * closes "all fds" leaves the carriers polling a closed number -- or the
 * program's own file that got it next. */
bool fz_driver_init(void)
{
    fz_ownfd_init();
    d.epfd = (int)fz_sys1(SYS_epoll_create1, EPOLL_CLOEXEC);
    d.wakefd = (int)fz_sys2(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d.epfd < 0 || d.wakefd < 0)
        return false;
    fz_ownfd_adopt(&d.epfd, true);
    fz_ownfd_adopt(&d.wakefd, true);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = WAKE_TOKEN};
    if (fz_sys4(SYS_epoll_ctl, d.epfd, EPOLL_CTL_ADD, d.wakefd, &ev) != 0)
        return false;
    fz_wheel_init(&d.wheel, fz_now_ns());
    atomic_init(&d.next_deadline, UINT64_MAX);
    return true;
}

/* Both numbers change only when the program targets one (dup2 onto it):
 * ownfd.c moves the fd and writes the new number here. */
int fz_driver_epfd(void)
{
    return __atomic_load_n(&d.epfd, __ATOMIC_ACQUIRE);
}

static void write_wake_edge(void)
{
    uint64_t one = 1;
    fz_sys3(SYS_write, __atomic_load_n(&d.wakefd, __ATOMIC_ACQUIRE), &one, sizeof one);
}

static void send_wake(void)
{
    if (!atomic_exchange(&d.wake_sent, 1))
        write_wake_edge();
}

/* Dekker with fz_driver_poll: the waker stores wake_pending then reads
 * sleeping, the driver stores sleeping then reads wake_pending, so either
 * the driver does not block or the waker writes the eventfd. */
void fz_driver_wake(void)
{
    atomic_store(&d.wake_pending, 1);
    if (atomic_load(&d.sleeping))
        send_wake();
}

bool fz_driver_sleeping(void)
{
    return atomic_load(&d.sleeping);
}

/* timer_lock, taken for c's fiber.  While it waits for another carrier's
 * batch, c says so: the hand-off monitor does not take that wait for its
 * fiber computing, since a spare would wait for the same lock. */
static void timer_lock_for(struct fz_carrier *c)
{
    if (fz_spin_trylock(&d.timer_lock))
        return;
    if (c)
        atomic_store_explicit(&c->waiting_runtime_lock, 1, memory_order_relaxed);
    fz_spin_lock(&d.timer_lock);
    if (c)
        atomic_store_explicit(&c->waiting_runtime_lock, 0, memory_order_relaxed);
}

void fz_timer_arm(struct fz_timer *t, struct fz_carrier *c)
{
    timer_lock_for(c);
    fz_wheel_insert(&d.wheel, t);
    bool earlier = t->deadline < atomic_load_explicit(&d.next_deadline, memory_order_relaxed);
    if (earlier)
        atomic_store(&d.next_deadline, t->deadline);
    fz_spin_unlock(&d.timer_lock);
    if (earlier && atomic_load(&d.sleeping) && t->deadline < atomic_load(&d.sleep_until))
        send_wake();
}

void fz_timer_disarm(struct fz_timer *t, struct fz_carrier *c)
{
    if (!t->armed)
        return; /* fired: the firing carrier is done with it (see fz_timers_fire) */
    timer_lock_for(c);
    fz_wheel_cancel(&d.wheel, t);
    fz_spin_unlock(&d.timer_lock);
}

bool fz_timers_due(void)
{
    return atomic_load_explicit(&d.next_deadline, memory_order_relaxed) <= fz_now_ns();
}

void fz_timers_fire(struct fz_carrier *c)
{
    /* One carrier fires at a time; the others go on with their fibers.
     * Helping would only bounce the timers' cache lines between CPUs batch
     * after batch: with every carrier firing, 100,000 sleeping threads
     * (bench/sleepers) took 9.0-9.3 s against 8.1-8.8 s before batches.
     * Nothing is lost: next_deadline stays "due" until the firing carrier
     * is done, and it is read again at every idle point and driver poll. */
    if (atomic_load_explicit(&d.firing, memory_order_relaxed) || atomic_exchange(&d.firing, 1))
        return;
    /* one reading for every batch: timers armed meanwhile in the past
     * still fire, but a steady stream of new ones cannot keep this going */
    uint64_t now = fz_now_ns();
    unsigned n = 0;
    for (bool done = false; !done;) {
        struct fz_timer *expired = NULL, *won = NULL;
        fz_spin_lock(&d.timer_lock);
        fz_wheel_advance(&d.wheel, now, FIRE_BATCH, &expired, &done);
        while (expired) {
            struct fz_timer *t = expired;
            expired = t->next;
            if (fz_waiter_claim(t->owner, FZ_WAKE_TIMEOUT)) {
                t->next = won; /* a fired timer's link is free */
                won = t;
            }
        }
        atomic_store(&d.next_deadline, fz_wheel_next_deadline(&d.wheel));
        fz_spin_unlock(&d.timer_lock);
        while (won) {
            struct fz_timer *t = won;
            won = t->next; /* the waiter, and its timer, may be gone once woken */
            fz_waiter_finish_wake_on(c, t->owner);
            n++;
        }
    }
    atomic_store(&d.firing, 0);
    if (c)
        c->stats.timers_fired += n;
}

bool fz_driver_acquire(void)
{
    return !atomic_load_explicit(&d.held, memory_order_relaxed) && !atomic_exchange(&d.held, 1);
}

void fz_driver_release(void)
{
    atomic_store(&d.held, 0);
}

static long epoll_wait_until(struct epoll_event *evs, int max, uint64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != UINT64_MAX) {
        uint64_t now = fz_now_ns();
        uint64_t wait = deadline > now ? deadline - now : 0;
        ts = fz_ns_to_ts(wait);
        tsp = &ts;
    }
    return fz_sys6(SYS_epoll_pwait2, fz_driver_epfd(), (long)evs, max, (long)tsp, 0, 8);
}

static void dispatch(struct fz_carrier *c, const struct epoll_event *evs, long n)
{
    c->stats.driver_polls++;
    for (long i = 0; i < n; i++)
        if (evs[i].data.u64 != WAKE_TOKEN)
            fz_reactor_dispatch(c, evs[i].data.u64, evs[i].events);
    if (fz_timers_due())
        fz_timers_fire(c);
}

void fz_driver_poll(struct fz_carrier *c, bool block)
{
    struct epoll_event evs[EVENTS_PER_POLL];
    uint64_t deadline = block ? atomic_load(&d.next_deadline) : 0;
    if (block) {
        atomic_store(&d.sleep_until, deadline);
        atomic_store(&d.sleeping, 1);
        /* a timer armed between the load above and `sleeping` must be seen */
        uint64_t again = atomic_load(&d.next_deadline);
        if (again < deadline)
            deadline = again;
        if (atomic_exchange(&d.wake_pending, 0))
            deadline = 0; /* woken before it slept: just poll */
    }
    long n = epoll_wait_until(evs, EVENTS_PER_POLL, block ? deadline : 0);
    if (block) {
        atomic_store(&d.sleeping, 0);
        atomic_store(&d.wake_sent, 0);
    }
    dispatch(c, evs, n);
}

/* Take what is ready without waiting.  driver_asleep: another carrier
 * sleeps in epoll_wait, and a wake-up edge taken here was meant for it (a
 * nearer timer, or work for it): make a new one. */
static void poll_ready(struct fz_carrier *c, bool driver_asleep)
{
    struct epoll_event evs[EVENTS_PER_BUSY_POLL];
    long n = epoll_wait_until(evs, EVENTS_PER_BUSY_POLL, 0);
    if (n <= 0)
        return;
    for (long i = 0; driver_asleep && i < n; i++)
        if (evs[i].data.u64 == WAKE_TOKEN)
            write_wake_edge();
    dispatch(c, evs, n);
}

void fz_driver_poll_busy(struct fz_carrier *c)
{
    poll_ready(c, false);
}

void fz_driver_peek(struct fz_carrier *c)
{
    poll_ready(c, true);
}

void fz_driver_after_fork(void)
{
    /* the epoll instance is shared with the parent: make our own.  The
     * inherited fds (the driver's, other fibers' per-wait ones) went at the
     * fork already (fz_ownfd_after_fork, preload/init.c): this may run much
     * later, when the program's fds may have taken their numbers. */
    d.timer_lock = (fz_spinlock){0};
    atomic_store(&d.firing, 0); /* a carrier of the parent's may have been firing */
    atomic_store(&d.held, 0);
    atomic_store(&d.sleeping, 0);
    atomic_store(&d.wake_sent, 0);
    atomic_store(&d.wake_pending, 0);
    fz_driver_init();
}

uint64_t fz_driver_timers_pending(void)
{
    return __atomic_load_n(&d.wheel.count, __ATOMIC_RELAXED); /* racy: for stats */
}

uint64_t fz_driver_next_deadline(void)
{
    return atomic_load_explicit(&d.next_deadline, memory_order_relaxed);
}
