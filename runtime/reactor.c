/* Reactor: fd readiness for fibers (see reactor.h).
 *
 * Invariants:
 *  - the fd table is two-level (1024 chunks of 1024 entries, mapped on
 *    first use and never freed), so an entry's address is stable and
 *    dispatch can look it up without allocating;
 *  - every field of an entry is guarded by its spinlock, except the
 *    sequence numbers, which are read without it (a stale read only makes a
 *    waiter re-check under the lock);
 *  - watch nodes live on the waiting fiber's stack and are linked only
 *    while it waits; whoever touches a linked node holds the fd's lock;
 *  - the driver claims waiters under the fd lock and wakes them after
 *    dropping it; a waiter that found readiness itself claims itself first,
 *    so every claim is matched by exactly one park.
 * The real O_NONBLOCK flag is never changed: attempts are made non-blocking
 * per call (RWF_NOWAIT, MSG_DONTWAIT), because file descriptions may be
 * shared with other processes.
 *
 * Held files.  A thread blocked in read(2) holds a reference to the file:
 * when another thread closes the number, the read goes on waiting, the
 * peer sees no hang-up, and data written later reaches it.  A parked fiber
 * holds nothing, so close(2) (fz_fd_close) keeps the file for it: if
 * holding watches are parked on it (`hold`: fz_fd_wait_following's calls,
 * poll and select), the file is copied to a hidden number (ownfd.h) and
 * they go on there; the last of them to finish closes the copy.  `waiting`
 * counts the holding watches linked on the current generation (count_in,
 * count_out, under the fd lock that links them); the close hands that
 * count to the held file (`calls`) and leaves `moved_to` on the old entry
 * until each counted watch has come out and taken its share (a call that
 * cannot follow gives it back).
 *
 * Closing.  fz_fd_close runs before the real close, so a call can still
 * find the number open and park after it: fz_fd_closed, after the real
 * close, wakes such calls and forgets what they registered.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "runtime/assert.h"
#include "runtime/driver.h"
#include "runtime/fiber.h"
#include "runtime/ownfd.h"
#include "runtime/reactor.h"
#include "runtime/sched.h"
#include "runtime/spinlock.h"
#include "runtime/sys.h"

#define CHUNK_BITS 10
#define CHUNK (1u << CHUNK_BITS)
#define CHUNKS 1024u

struct fz_fd {
    fz_spinlock lock;
    int fd;
    uint8_t kind;
    bool nonblock, no_nowait;
    bool stream;            /* pipe, FIFO or SOCK_STREAM: a short read drains it */
    bool stream_socket;     /* SOCK_STREAM: read/write are recv/send with no flags */
    bool hangup;            /* saw RDHUP/HUP/ERR: EOF or an error may be pending */
    atomic_uint drained_at; /* read seq + 1 at which a read found it empty; 0 none */
    atomic_int kept_error;  /* fz_fd_keep_error; 0 none */
    uint32_t gen;
    atomic_uint seq[2];
    uint64_t timeout[2];
    struct fz_fd_watch *head[2];
    atomic_int turn;
    /* held files (see the top), all under `lock` */
    unsigned waiting;         /* calls parked in fz_fd_wait* on this generation */
    struct fz_held *moved_to; /* where the calls of moved_gen go on */
    uint32_t moved_gen;       /* the generation a close with waiters ended */
    unsigned moved_pending;   /* calls of moved_gen yet to come out */
    atomic_uint forgets;      /* fz_fd_forget calls, as a token (fz_fd_closed) */
    struct fz_held *held;     /* this number is a held file's copy (set before its
                                 first follower, cleared by its last) */
};

/* A file kept open for calls that were parked on it when the program
 * closed its number.  `fd` is the hidden copy (ownfd.h holder: it follows a
 * move); `calls` the calls still using it. */
struct fz_held {
    int fd;
    atomic_uint calls;
    struct fz_fd *entry; /* the copy's number's entry, where the calls wait */
    uint32_t seq0[2];    /* the entry's sequences before it was registered */
    bool used;           /* under held_lock */
};

/* Closes that race a parked call are rare (a program shutting a connection
 * down from another thread); a close past this many held files at once
 * ends its waiters with EBADF, as before held files existed.  Each holds one
 * of ownfd's 64 per-wait numbers. */
#define HELD_MAX 16
static struct fz_held held_files[HELD_MAX];
static fz_spinlock held_lock;

static _Atomic(struct fz_fd *) chunks[CHUNKS];

static struct fz_fd *lookup(int fd, bool create)
{
    if (fd < 0 || (unsigned)fd >= CHUNK * CHUNKS)
        return NULL;
    unsigned c = (unsigned)fd >> CHUNK_BITS;
    struct fz_fd *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
    if (!chunk) {
        if (!create)
            return NULL;
        long p = fz_sys6(SYS_mmap, 0, sizeof(struct fz_fd) * CHUNK, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if ((unsigned long)p > -4096ul) /* -errno */
            return NULL;
        struct fz_fd *fresh = (struct fz_fd *)p, *expected = NULL;
        for (unsigned i = 0; i < CHUNK; i++)
            fresh[i].fd = (int)(c * CHUNK + i);
        if (atomic_compare_exchange_strong(&chunks[c], &expected, fresh)) {
            chunk = fresh;
        } else {
            fz_sys2(SYS_munmap, p, sizeof(struct fz_fd) * CHUNK);
            chunk = expected;
        }
    }
    return &chunk[(unsigned)fd & (CHUNK - 1)];
}

static uint64_t token(struct fz_fd *s)
{
    return ((uint64_t)s->gen << 32) | (uint32_t)s->fd;
}

static void learn_stream(struct fz_fd *s)
{
    struct stat st;
    s->stream = s->stream_socket = false;
    if (fz_sys2(SYS_fstat, s->fd, &st) != 0)
        return;
    if (S_ISFIFO(st.st_mode)) {
        s->stream = true;
        return;
    }
    int type = 0;
    socklen_t len = sizeof type;
    s->stream = s->stream_socket =
        S_ISSOCK(st.st_mode) &&
        fz_sys6(SYS_getsockopt, s->fd, SOL_SOCKET, SO_TYPE, (long)&type, (long)&len, 0) == 0 &&
        type == SOCK_STREAM;
}

/* probe: ask the kernel what the fd is (its O_NONBLOCK, stream or not);
 * false for an fd the runtime opened itself and knows to be neither (a
 * pidfd): two system calls fewer, and a dispatcher that sees the fd's
 * first event spins on s->lock for one epoll_ctl, not three calls. */
static void register_locked(struct fz_fd *s, bool probe)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = token(s)};
    long r = fz_sys4(SYS_epoll_ctl, fz_driver_epfd(), EPOLL_CTL_ADD, s->fd, &ev);
    if (r == -EEXIST) /* registered under an older generation: refresh the token */
        r = fz_sys4(SYS_epoll_ctl, fz_driver_epfd(), EPOLL_CTL_MOD, s->fd, &ev);
    if (r == 0) {
        if (probe) {
            long fl = fz_sys2(SYS_fcntl, s->fd, F_GETFL);
            s->nonblock = fl >= 0 && (fl & O_NONBLOCK);
            learn_stream(s);
        } else {
            s->nonblock = s->stream = s->stream_socket = false;
        }
        s->hangup = false;
        atomic_store(&s->drained_at, 0);
        s->kind = FZ_FD_POLLABLE;
    } else if (r == -EPERM) {
        s->kind = FZ_FD_UNPOLLABLE;
    }
    /* EBADF & co: stay unknown, the real call reports the error */
}

static struct fz_fd *get(int fd, bool probe)
{
    struct fz_fd *s = lookup(fd, true);
    if (!s)
        return NULL;
    if (s->kind == FZ_FD_UNKNOWN) {
        fz_spin_lock(&s->lock);
        if (s->kind == FZ_FD_UNKNOWN)
            register_locked(s, probe);
        fz_spin_unlock(&s->lock);
    }
    return s;
}

struct fz_fd *fz_fd_get(int fd)
{
    return get(fd, true);
}

struct fz_fd *fz_fd_get_event_fd(int fd)
{
    return get(fd, false);
}

int fz_fd_kind(struct fz_fd *s)
{
    return s->kind;
}

uint32_t fz_fd_gen(struct fz_fd *s)
{
    return __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
}

uint32_t fz_fd_seq(struct fz_fd *s, int dir)
{
    return atomic_load_explicit(&s->seq[dir], memory_order_acquire);
}

void fz_fd_note_empty(struct fz_fd *s, uint32_t seq)
{
    if (s->stream)
        atomic_store_explicit(&s->drained_at, seq + 1, memory_order_relaxed);
}

bool fz_fd_known_empty(struct fz_fd *s, uint32_t seq)
{
    /* after a hang-up a short read may leave EOF (or an error) behind */
    return atomic_load_explicit(&s->drained_at, memory_order_relaxed) == seq + 1 &&
           !__atomic_load_n(&s->hangup, __ATOMIC_RELAXED);
}

/* fds with an error kept, so poll looks only when there is one */
static atomic_int kept_errors;

void fz_fd_keep_error(struct fz_fd *s, int err)
{
    if (atomic_exchange(&s->kept_error, err) == 0)
        atomic_fetch_add(&kept_errors, 1);
}

bool fz_fd_error_kept(struct fz_fd *s)
{
    return atomic_load_explicit(&s->kept_error, memory_order_relaxed) != 0;
}

int fz_fd_take_error(struct fz_fd *s)
{
    if (!fz_fd_error_kept(s))
        return 0;
    int err = atomic_exchange(&s->kept_error, 0);
    if (err)
        atomic_fetch_sub(&kept_errors, 1);
    return err;
}

int fz_fd_kept_error_of(int fd)
{
    if (!atomic_load_explicit(&kept_errors, memory_order_relaxed))
        return 0;
    struct fz_fd *s = lookup(fd, false);
    return s ? atomic_load(&s->kept_error) : 0;
}

bool fz_fd_nonblock(struct fz_fd *s)
{
    return s->nonblock;
}

bool fz_fd_stream_socket(struct fz_fd *s)
{
    return s->stream_socket;
}

bool fz_fd_no_nowait(struct fz_fd *s)
{
    return s->no_nowait;
}

void fz_fd_set_no_nowait(struct fz_fd *s)
{
    s->no_nowait = true;
}

uint64_t fz_fd_timeout(struct fz_fd *s, int dir)
{
    return s->timeout[dir];
}

void fz_fd_set_nonblock(int fd, bool on)
{
    struct fz_fd *s = fz_fd_get(fd);
    if (s)
        s->nonblock = on;
}

void fz_fd_set_timeout(int fd, int dir, uint64_t ns)
{
    struct fz_fd *s = fz_fd_get(fd);
    if (s)
        s->timeout[dir] = ns;
}

/* ---- waiting --------------------------------------------------------- */

static void link_node(struct fz_fd_watch *w, int dir)
{
    struct fz_fd *s = w->fd;
    w->prev[dir] = NULL;
    w->next[dir] = s->head[dir];
    if (s->head[dir])
        s->head[dir]->prev[dir] = w;
    s->head[dir] = w;
}

static void unlink_node(struct fz_fd_watch *w, int dir)
{
    struct fz_fd *s = w->fd;
    if (w->prev[dir])
        w->prev[dir]->next[dir] = w->next[dir];
    else if (s->head[dir] == w)
        s->head[dir] = w->next[dir];
    else
        return; /* already taken off by fz_fd_forget */
    if (w->next[dir])
        w->next[dir]->prev[dir] = w->prev[dir];
}

/* Take every node of `dir` off the list and claim its waiter. */
static struct fz_waiter *take_dir(struct fz_fd *s, int dir, struct fz_waiter *won)
{
    for (struct fz_fd_watch *w = s->head[dir], *next; w; w = next) {
        next = w->next[dir];
        w->prev[dir] = w->next[dir] = NULL;
        if (fz_waiter_claim(w->waiter, FZ_WAKE_NOTIFIED)) {
            w->waiter->next = won;
            won = w->waiter;
        }
    }
    s->head[dir] = NULL;
    return won;
}

static void wake_all(struct fz_carrier *c, struct fz_waiter *won)
{
    while (won) {
        struct fz_waiter *next = won->next;
        fz_waiter_finish_wake_on(c, won);
        won = next;
    }
}

void fz_fd_watch_prepare(struct fz_fd_watch *w, struct fz_fd *fd, bool rd, bool wr)
{
    *w = (struct fz_fd_watch){.fd = fd, .gen = fz_fd_gen(fd), .want = {rd, wr}};
    w->seq[FZ_READ] = fz_fd_seq(fd, FZ_READ);
    w->seq[FZ_WRITE] = fz_fd_seq(fd, FZ_WRITE);
}

/* Under w->fd's lock, linking: a watch that holds counts itself in, so
 * that a close can keep the file for it; one whose generation ended since
 * it was prepared does not park. */
static bool count_in(struct fz_fd_watch *w)
{
    struct fz_fd *s = w->fd;
    if (!w->hold)
        return true;
    if (s->gen != w->gen) {
        w->closed = true;
        return false;
    }
    s->waiting++;
    w->counted = true;
    return true;
}

/* Under w->fd's lock, unlinking: count out, or take the share of the held
 * copy the close left for this generation's calls. */
static void count_out(struct fz_fd_watch *w)
{
    struct fz_fd *s = w->fd;
    if (!w->counted)
        return;
    w->counted = false;
    if (s->gen == w->gen) {
        FZ_ASSERT(s->waiting > 0); /* every linked holding watch was counted */
        s->waiting--;
    } else if (s->moved_to && s->moved_gen == w->gen) {
        w->held = s->moved_to;
        if (--s->moved_pending == 0)
            s->moved_to = NULL;
    } else {
        w->closed = true;
    }
}

int fz_fd_watch_wait(struct fz_fd_watch *ws, int n, uint64_t deadline, int intr)
{
again:;
    struct fz_waiter waiter;
    fz_waiter_init(&waiter, deadline, intr);
    waiter.kind = FZ_WAIT_FD; /* for dumps */
    waiter.about = n == 1 ? ws[0].fd->fd : -n;
    bool ready = false;
    for (int i = 0; i < n; i++) {
        struct fz_fd_watch *w = &ws[i];
        w->waiter = &waiter;
        fz_spin_lock(&w->fd->lock);
        if (!count_in(w))
            ready = true; /* closed since prepared: the caller finds out */
        for (int dir = 0; dir < 2; dir++) {
            if (!w->want[dir])
                continue;
            if (fz_fd_seq(w->fd, dir) != w->seq[dir])
                ready = true;
            link_node(w, dir);
        }
        fz_spin_unlock(&w->fd->lock);
    }
    int reason;
    if (ready && fz_waiter_claim(&waiter, FZ_WAKE_NOTIFIED)) {
        reason = FZ_WAKE_NOTIFIED; /* nobody else will wake us: do not park */
    } else {
        if (waiter.fiber)
            fz_sched_parking_on_fd(waiter.fiber);
        reason = fz_waiter_block(&waiter);
    }
    bool moved = false;
    for (int i = 0; i < n; i++) {
        struct fz_fd_watch *w = &ws[i];
        fz_spin_lock(&w->fd->lock);
        for (int dir = 0; dir < 2; dir++)
            if (w->want[dir])
                unlink_node(w, dir);
        count_out(w);
        fz_spin_unlock(&w->fd->lock);
        moved |= w->held != NULL;
    }
    fz_wait_over(waiter.fiber);
    if (reason == FZ_WAKE_RESTART && !moved)
        goto again; /* an event meanwhile moved the fd's seq: ready at once */
    return reason == FZ_WAKE_TIMEOUT ? ETIMEDOUT : reason == FZ_WAKE_INTERRUPT ? EINTR : 0;
}

static void held_call_over(struct fz_held *h);

/* One parked call on *s that holds its file (count_in).  When a close kept
 * it, a call that may follow gets the held copy's entry and generation in
 * *s and *gen; one that may not gives its share back and reports EBADF. */
static int wait_counted(struct fz_fd **sp, uint32_t *genp, int dir, uint32_t seq, uint64_t deadline,
                        bool follow)
{
    struct fz_fd_watch w = {.fd = *sp, .gen = *genp, .hold = true};
    w.want[dir] = true;
    w.seq[dir] = seq;
    /* signal(7): socket calls with a timeout set are never restarted */
    int r = fz_fd_watch_wait(&w, 1, deadline, deadline ? FZ_INTR_ALWAYS : FZ_INTR_NORESTART);
    if (w.held && !follow) {
        held_call_over(w.held);
        return EBADF;
    }
    if (w.held) {
        *sp = w.held->entry;
        *genp = fz_fd_gen(w.held->entry);
        return r; /* 0: try the call again, on the held copy */
    }
    return w.closed ? EBADF : r; /* closed before the park or without a copy */
}

int fz_fd_wait(struct fz_fd *s, int dir, uint32_t seq, uint64_t deadline)
{
    uint32_t gen = fz_fd_gen(s);
    return wait_counted(&s, &gen, dir, seq, deadline, false);
}

int fz_fd_wait_following(struct fz_fd **s, uint32_t *gen, int dir, uint32_t seq, uint64_t deadline)
{
    return wait_counted(s, gen, dir, seq, deadline, true);
}

int fz_fd_number(struct fz_fd *s)
{
    return s->fd;
}

void fz_fd_call_over(const struct fz_fd *began, struct fz_fd *now)
{
    /* a call that followed is on a copy's entry, whose `held` stays until
     * the last follower leaves; the program's own calls never moved, even
     * on a number it took over from a copy (a dup2 onto it) */
    if (now && now != began)
        held_call_over(__atomic_load_n(&now->held, __ATOMIC_ACQUIRE));
}

bool fz_fd_take_turn(struct fz_fd *s)
{
    return !atomic_exchange(&s->turn, 1);
}

void fz_fd_end_turn(struct fz_fd *s, bool progressed)
{
    atomic_store(&s->turn, 0);
    if (!progressed)
        return; /* nothing was ready: the next edge wakes everyone */
    fz_spin_lock(&s->lock);
    atomic_fetch_add(&s->seq[FZ_READ], 1);
    struct fz_waiter *won = take_dir(s, FZ_READ, NULL);
    fz_spin_unlock(&s->lock);
    wake_all(NULL, won);
}

unsigned fz_fd_highest_known(void)
{
    for (unsigned c = CHUNKS; c-- > 0;)
        if (atomic_load_explicit(&chunks[c], memory_order_acquire))
            return (c + 1) * CHUNK - 1;
    return 0;
}

/* Under s's lock: an edge in both directions, and every waiter claimed
 * (woken with wake_all once the lock is dropped). */
static struct fz_waiter *take_everyone(struct fz_fd *s)
{
    atomic_fetch_add(&s->seq[0], 1);
    atomic_fetch_add(&s->seq[1], 1);
    return take_dir(s, FZ_WRITE, take_dir(s, FZ_READ, NULL));
}

/* Wake every waiter of s in both directions, after `change` (under the
 * fd lock) has updated its state. */
static void wake_everyone(struct fz_fd *s, void (*change)(struct fz_fd *))
{
    fz_spin_lock(&s->lock);
    if (change)
        change(s);
    struct fz_waiter *won = take_everyone(s);
    fz_spin_unlock(&s->lock);
    wake_all(NULL, won);
}

void fz_fd_kick(int fd)
{
    struct fz_fd *s = lookup(fd, false);
    if (s)
        wake_everyone(s, NULL);
}

/* A new generation: waiters of the old one see it and report EBADF. */
static void new_generation(struct fz_fd *s)
{
    __atomic_store_n(&s->gen, s->gen + 1, __ATOMIC_RELEASE);
    s->waiting = 0; /* the old generation's calls find out and report EBADF */
    s->kind = FZ_FD_UNKNOWN;
    s->nonblock = s->no_nowait = false;
    s->timeout[0] = s->timeout[1] = 0;
    fz_fd_take_error(s);
}

/* Nothing known about s, and nothing being learnt: no registration under
 * way (it holds the lock from its epoll_ctl to storing the kind), none
 * done, no waiter.  Racy reads, safe because a registration that began
 * after them cannot outlive the real close that follows fz_fd_closed. */
static bool untouched(struct fz_fd *s)
{
    if (fz_spin_held(&s->lock))
        return false;
    atomic_thread_fence(memory_order_acquire); /* the lock's release: its kind */
    return s->kind == FZ_FD_UNKNOWN && !s->head[0] && !s->head[1];
}

/* Forget what s knows; returns s's forget count after this forget, the
 * token a close hands to fz_fd_closed (a later forget -- a new file's --
 * changes it). */
static unsigned forget_entry(struct fz_fd *s)
{
    unsigned count = atomic_fetch_add_explicit(&s->forgets, 1, memory_order_acq_rel) + 1;
    if (untouched(s))
        return count;
    /* A vfork child closing its copies (before exec) must not wake the
     * parent's waiters with EBADF: Python's subprocess does that from
     * threads that read other children's pipes. */
    if (s->kind == FZ_FD_POLLABLE && fz_in_vfork_child())
        return count;
    wake_everyone(s, new_generation);
    return count;
}

void fz_fd_forget(int fd)
{
    struct fz_fd *s = lookup(fd, false);
    if (s)
        forget_entry(s);
}

/* ---- held files ------------------------------------------------------- */

static struct fz_held *held_take(void)
{
    struct fz_held *h = NULL;
    fz_spin_lock(&held_lock);
    for (int i = 0; i < HELD_MAX && !h; i++)
        if (!held_files[i].used) {
            h = &held_files[i];
            h->used = true;
        }
    fz_spin_unlock(&held_lock);
    return h;
}

static void held_give_back(struct fz_held *h)
{
    fz_spin_lock(&held_lock);
    h->used = false;
    fz_spin_unlock(&held_lock);
}

/* Close the copy: its number's state goes first (unless a dup2 of the
 * program's moved the copy away and the number is the program's now). */
static void held_close(struct fz_held *h)
{
    struct fz_fd *e = h->entry;
    if (e) {
        __atomic_store_n(&e->held, NULL, __ATOMIC_RELEASE);
        if (__atomic_load_n(&h->fd, __ATOMIC_ACQUIRE) == e->fd)
            fz_fd_forget(e->fd);
    }
    h->entry = NULL;
    fz_ownfd_release(&h->fd);
    held_give_back(h);
}

static void held_call_over(struct fz_held *h)
{
    if (atomic_fetch_sub(&h->calls, 1) == 1)
        held_close(h);
}

/* A hidden copy of s's file, registered and ready for followers; NULL if
 * none can be made (no free held file, number or slot). */
static struct fz_held *held_copy_of(struct fz_fd *s)
{
    struct fz_held *h = held_take();
    if (!h)
        return NULL;
    if (!fz_ownfd_dup(s->fd, &h->fd)) {
        held_give_back(h);
        return NULL;
    }
    /* before registering: the registration's own event counts for watchers
     * that follow (fz_fd_watch_follow) */
    struct fz_fd *e = lookup(h->fd, true);
    if (e) {
        h->seq0[FZ_READ] = fz_fd_seq(e, FZ_READ);
        h->seq0[FZ_WRITE] = fz_fd_seq(e, FZ_WRITE);
        e = get(h->fd, true);
    }
    h->entry = e;
    if (!e || e->kind != FZ_FD_POLLABLE) {
        held_close(h); /* forgets what get() learnt about the number */
        return NULL;
    }
    atomic_store(&h->calls, 0);
    __atomic_store_n(&e->held, h, __ATOMIC_RELEASE);
    return h;
}

void fz_fd_closed(int fd, unsigned token)
{
    struct fz_fd *s = lookup(fd, false);
    if (s && atomic_load_explicit(&s->forgets, memory_order_acquire) == token)
        forget_entry(s);
}

void fz_fd_watch_follow(struct fz_fd_watch *w)
{
    struct fz_held *h = w->held;
    FZ_ASSERT(h && !w->counted);
    *w = (struct fz_fd_watch){
        .fd = h->entry, .gen = fz_fd_gen(h->entry), .want = {w->want[0], w->want[1]}};
    w->seq[FZ_READ] = h->seq0[FZ_READ];
    w->seq[FZ_WRITE] = h->seq0[FZ_WRITE];
}

struct fz_fd *fz_fd_held_entry(const struct fz_held *h)
{
    return h->entry;
}

int fz_fd_held_number(const struct fz_held *h)
{
    return __atomic_load_n(&h->fd, __ATOMIC_ACQUIRE); /* ownfd may move it */
}

void fz_fd_held_done(struct fz_held *h)
{
    held_call_over(h);
}

/* The token when fd has no entry: it matches no forget count, so
 * fz_fd_closed leaves the number alone. */
#define NO_FORGET_TOKEN UINT_MAX

static unsigned close_entry(struct fz_fd *s)
{
    if (!__atomic_load_n(&s->waiting, __ATOMIC_RELAXED) || s->kind != FZ_FD_POLLABLE ||
        fz_in_vfork_child() || s->moved_to)
        return forget_entry(s);
    struct fz_held *h = held_copy_of(s);
    if (!h)
        return forget_entry(s);
    fz_spin_lock(&s->lock);
    unsigned n = s->waiting;
    if (n == 0 || s->moved_to) { /* they left meanwhile, or a racing close */
        fz_spin_unlock(&s->lock);
        held_close(h);
        return forget_entry(s);
    }
    atomic_store(&h->calls, n);
    h->entry->timeout[0] = s->timeout[0]; /* the program set them on the socket */
    h->entry->timeout[1] = s->timeout[1];
    int kept = fz_fd_take_error(s); /* the socket's, pending for the calls */
    if (kept)
        fz_fd_keep_error(h->entry, kept);
    s->moved_to = h;
    s->moved_gen = s->gen;
    s->moved_pending = n;
    s->waiting = 0;
    new_generation(s);
    struct fz_waiter *won = take_everyone(s);
    fz_spin_unlock(&s->lock);
    wake_all(NULL, won);
    return atomic_load_explicit(&s->forgets, memory_order_acquire);
}

unsigned fz_fd_close(int fd)
{
    /* No room made for a number nothing ever used: a daemon's close loop
     * up to sysconf(_SC_OPEN_MAX) would map the whole table.  A new file's
     * call that makes its room during the close must not be forgotten. */
    struct fz_fd *s = lookup(fd, false);
    return s ? close_entry(s) : NO_FORGET_TOKEN;
}

void fz_reactor_dispatch(struct fz_carrier *c, uint64_t tok, uint32_t events)
{
    struct fz_fd *s = lookup((int)(uint32_t)tok, false);
    if (!s)
        return;
    bool rd = events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool wr = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    struct fz_waiter *won = NULL;
    fz_spin_lock(&s->lock);
    if (s->gen == (uint32_t)(tok >> 32) && s->kind == FZ_FD_POLLABLE) {
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            __atomic_store_n(&s->hangup, true, __ATOMIC_RELAXED);
        if (rd) {
            atomic_fetch_add(&s->seq[FZ_READ], 1);
            won = take_dir(s, FZ_READ, won);
        }
        if (wr) {
            atomic_fetch_add(&s->seq[FZ_WRITE], 1);
            won = take_dir(s, FZ_WRITE, won);
        }
    }
    fz_spin_unlock(&s->lock);
    wake_all(c, won);
}

void fz_reactor_after_fork(void)
{
    /* registrations belong to the parent's epoll instance; waiters were
     * other threads, which the child does not have */
    for (unsigned c = 0; c < CHUNKS; c++) {
        struct fz_fd *chunk = atomic_load(&chunks[c]);
        if (!chunk)
            continue;
        for (unsigned i = 0; i < CHUNK; i++) {
            struct fz_fd *s = &chunk[i];
            /* Untouched since its last reset: left alone, so its page stays
             * shared with the parent (a chunk is 18 pages; writing every
             * entry cost a child one copy-on-write fault per page). */
            if (s->kind == FZ_FD_UNKNOWN && !fz_spin_held(&s->lock) && !s->head[0] && !s->head[1] &&
                !atomic_load(&s->turn) && !atomic_load(&s->kept_error) && !s->moved_to &&
                !s->held && !s->waiting)
                continue;
            s->lock = (fz_spinlock){0};
            s->gen++;
            s->kind = FZ_FD_UNKNOWN;
            s->head[0] = s->head[1] = NULL;
            atomic_store(&s->turn, 0);
            fz_fd_take_error(s);               /* the child's next call asks the kernel */
            s->waiting = s->moved_pending = 0; /* the calls were other threads' */
            s->moved_to = NULL;
            s->held = NULL;
        }
    }
    /* the copies were per-wait fds: fz_ownfd_after_fork closed them */
    for (int i = 0; i < HELD_MAX; i++)
        held_files[i] = (struct fz_held){.fd = -1};
    held_lock = (fz_spinlock){0};
}

unsigned fz_reactor_registered(void)
{
    unsigned n = 0;
    for (unsigned c = 0; c < CHUNKS; c++) {
        struct fz_fd *chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
        for (unsigned i = 0; chunk && i < CHUNK; i++)
            n += __atomic_load_n(&chunk[i].kind, __ATOMIC_RELAXED) == FZ_FD_POLLABLE;
    }
    return n;
}
