/* poll, select and epoll_wait: a park on several fds plus a deadline.
 *
 * Each call is the real call with a zero timeout, retried after the fiber
 * parks on the readiness of every fd it asked about (a program's own epoll
 * fd is itself pollable).  The real call stays the judge of what is ready
 * and of every error (POLLNVAL, EBADF, EINVAL), so results are the kernel's
 * own.  When the call fails (EINTR) select's fd_sets are given back as
 * the program passed them: the kernel copies nothing back then, and
 * programs retry with the same sets (CPython, PEP 475).  Variants with a
 * signal mask (ppoll, pselect, epoll_pwait with a mask) go to the real
 * call: the mask must apply atomically to the wait, which a parked fiber
 * cannot do (documented; they block their carrier).
 *
 * A blocked poll or select holds a reference to each file it sleeps on:
 * when another thread closes one of the numbers, the file stays open (a
 * pipe's writer still has a reader), the close wakes nobody, and the call
 * rescans the numbers at its next wake-up (an event on any of its files,
 * the old one included) or at its timeout.  poll then says POLLNVAL for a
 * number left closed; select (Linux 6.18 here) reports it ready in every
 * set that asked.  A number taken by a new file is that file's.  So a
 * close keeps the file for the parked call (reactor.h's held files), the
 * call goes on watching the copy without checking, and lets it go when it
 * returns.  epoll_wait holds its epoll fd the same way: closed under the
 * call, the instance lives on in the copy, whose events (its interest
 * list's) the call reports, or it times out; the call after it gets EBADF.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include "runtime/reactor.h"
#include "runtime/sys.h"
#include "syscalls/hook.h"

/* Files one call keeps after the program closed their numbers.  More
 * than this (a program closing nine fds under one poll) are let go, and the
 * call reports their numbers at once, as before holding. */
#define HOLDS_MAX 8

struct holds {
    int n;
    struct {
        struct fz_held *file;
        int fd; /* the program's number it was */
    } at[HOLDS_MAX];
};

/* Watches a call keeps on its fiber's stack (one per pollable fd, one per
 * held file); a bigger call takes them from the heap.  56 of 80 bytes are
 * about the 4.5 KB a poll used before it held files: a small thread stack
 * that polls has the room it had. */
#define LOCAL_WATCHES 56

typedef int (*check_fn)(void *ctx, const struct holds *holds);

static uint64_t ms_deadline(int timeout)
{
    return timeout < 0 ? 0 : fz_now_ns() + (uint64_t)timeout * 1000000u;
}

/* Prepare one watch per pollable fd, then one per held file; returns how
 * many. */
static int prepare(struct fz_fd_watch *ws, const struct pollfd *want, nfds_t n, bool hold,
                   const struct holds *holds)
{
    int k = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (want[i].fd < 0)
            continue;
        struct fz_fd *s = fz_fd_get(want[i].fd);
        if (!s || fz_fd_kind(s) != FZ_FD_POLLABLE)
            continue; /* the real call reports it (ready or invalid) */
        bool rd = want[i].events & (POLLIN | POLLPRI | POLLRDHUP);
        bool wr = want[i].events & POLLOUT;
        fz_fd_watch_prepare(&ws[k], s, rd || !wr, wr);
        ws[k++].hold = hold;
    }
    /* an event on a held file wakes the call as natively, to rescan */
    for (int i = 0; i < holds->n; i++)
        fz_fd_watch_prepare(&ws[k++], fz_fd_held_entry(holds->at[i].file), true, true);
    return k;
}

/* After a wait: take on the files a close kept for this call and watch
 * them instead.  True if the call should wait on without checking (the
 * close was all that happened, and a close wakes no one natively). */
static bool follow_closes(struct fz_fd_watch *ws, int k, struct holds *holds)
{
    bool followed = false, check = false;
    for (int i = 0; i < k; i++) {
        struct fz_fd_watch *w = &ws[i];
        if (w->held && holds->n < HOLDS_MAX) {
            holds->at[holds->n].file = w->held;
            holds->at[holds->n++].fd = fz_fd_number(w->fd);
            fz_fd_watch_follow(w);
            followed = true;
        } else if (w->held) {
            fz_fd_held_done(w->held);
            w->held = NULL;
            check = true;
        } else if (w->closed) {
            check = true;
        }
    }
    return followed && !check;
}

static void let_go(struct holds *holds)
{
    for (int i = 0; i < holds->n; i++)
        fz_fd_held_done(holds->at[i].file);
    holds->n = 0;
}

/* check() until it reports something, parking on `want` in between.
 * hold: a close of a watched number keeps its file until the call ends. */
static int wait_loop(const struct pollfd *want, nfds_t n, bool hold, uint64_t deadline,
                     check_fn check, void *ctx)
{
    struct fz_fd_watch local[LOCAL_WATCHES], *ws = local;
    if (n + HOLDS_MAX > LOCAL_WATCHES && !(ws = malloc(sizeof *ws * (n + HOLDS_MAX))))
        return FZ_FALLBACK;
    struct holds holds = {0};
    /* from before the first check: a signal handled anywhere in the call
     * ends it (never restarted), as it ends the one system call natively */
    unsigned call = fz_call_begin(FZ_INTR_ALWAYS);
    int r;
    for (;;) {
        int k = prepare(ws, want, n, hold, &holds);
        r = check(ctx, &holds);
        if (r != 0)
            break;
        if (deadline && fz_now_ns() >= deadline)
            break;
        int w;
        do /* never restarted */
            w = fz_fd_watch_wait(ws, k, deadline, FZ_INTR_ALWAYS);
        while (w == 0 && follow_closes(ws, k, &holds));
        if (w != 0)
            follow_closes(ws, k, &holds); /* shares taken as the wait ended */
        if (w == EINTR) {
            let_go(&holds); /* before a cancellation unwinds the call */
            fz_cancel_point();
            errno = EINTR;
            r = -1;
            break;
        }
        if (w == ETIMEDOUT) {
            r = check(ctx, &holds);
            break;
        }
    }
    fz_call_end(call);
    let_go(&holds);
    if (ws != local)
        free(ws);
    return r;
}

/* ---- poll ------------------------------------------------------------ */

struct poll_args {
    struct pollfd *fds;
    nfds_t n;
};

/* A socket error kept for the program (io.h) is pending natively, and
 * poll reports a pending error as POLLERR whatever was asked. */
static int with_kept_errors(struct pollfd *fds, nfds_t n, int r)
{
    if (r < 0 || !fz_rt.active)
        return r;
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].fd >= 0 && fz_fd_kept_error_of(fds[i].fd)) {
            r += fds[i].revents == 0;
            fds[i].revents |= POLLERR;
        }
    return r;
}

static int poll_now(void *ctx, const struct holds *holds)
{
    (void)holds; /* the kernel says POLLNVAL for a closed number */
    struct poll_args *a = ctx;
    return with_kept_errors(a->fds, a->n, fz_real.poll(a->fds, a->n, 0));
}

static int park_poll(struct pollfd *fds, nfds_t n, uint64_t deadline)
{
    struct poll_args a = {fds, n};
    return wait_loop(fds, n, true, deadline, poll_now, &a);
}

FZ_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (timeout == 0 || !fz_hook_self(FZ_HOOK_IO))
        return with_kept_errors(fds, n, fz_real.poll(fds, n, timeout));
    int r = park_poll(fds, n, ms_deadline(timeout));
    return r == FZ_FALLBACK ? fz_real.poll(fds, n, timeout) : r;
}

FZ_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    if (mask || (ts && ts->tv_sec == 0 && ts->tv_nsec == 0) || !fz_hook_self(FZ_HOOK_IO))
        return with_kept_errors(fds, n, fz_real.ppoll(fds, n, ts, mask));
    if (ts && (!fz_timespec_valid(ts) || ts->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    int r = park_poll(fds, n, ts ? fz_rel_to_deadline(ts) : 0);
    return r == FZ_FALLBACK ? fz_real.ppoll(fds, n, ts, mask) : r;
}

/* ---- select ---------------------------------------------------------- */

struct select_args {
    int nfds;
    fd_set *sets[3], saved[3];
};

static bool number_closed(int fd)
{
    return fz_sys2(SYS_fcntl, fd, F_GETFD) == -EBADF;
}

/* A number closed while the call waited (it holds the file) is reported
 * ready in each set that asked for it, as Linux 6.18 does; the kernel
 * would say EBADF for it, so it is not passed on. */
static int select_now(void *ctx, const struct holds *holds)
{
    struct select_args *a = ctx;
    for (int i = 0; i < 3; i++)
        if (a->sets[i])
            *a->sets[i] = a->saved[i];
    int gone[HOLDS_MAX], n_gone = 0;
    for (int h = 0; h < holds->n; h++) {
        int fd = holds->at[h].fd;
        if (fd >= a->nfds || !number_closed(fd))
            continue;
        gone[n_gone++] = fd;
        for (int i = 0; i < 3; i++)
            if (a->sets[i])
                FD_CLR(fd, a->sets[i]);
    }
    struct timeval zero = {0, 0};
    int r = fz_real.select(a->nfds, a->sets[0], a->sets[1], a->sets[2], &zero);
    for (int g = 0; r >= 0 && g < n_gone; g++)
        for (int i = 0; i < 3; i++)
            if (a->sets[i] && FD_ISSET(gone[g], &a->saved[i]) && !FD_ISSET(gone[g], a->sets[i])) {
                FD_SET(gone[g], a->sets[i]);
                r++;
            }
    return r;
}

static int park_select(int nfds, fd_set *r, fd_set *w, fd_set *e, uint64_t deadline)
{
    struct select_args a = {nfds, {r, w, e}, {{{0}}}};
    struct pollfd local[64], *want = local;
    if (nfds > 64 && !(want = malloc(sizeof *want * (size_t)nfds)))
        return FZ_FALLBACK;
    nfds_t n = 0;
    for (int i = 0; i < 3; i++)
        if (a.sets[i])
            a.saved[i] = *a.sets[i];
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        short ev = (r && FD_ISSET(fd, r) ? POLLIN : 0) | (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                   (e && FD_ISSET(fd, e) ? POLLPRI : 0);
        if (ev)
            want[n++] = (struct pollfd){fd, ev, 0};
    }
    int res = wait_loop(want, n, true, deadline, select_now, &a);
    if (res < 0) /* the kernel copies no set back on failure (EINTR) */
        for (int i = 0; i < 3; i++)
            if (a.sets[i])
                *a.sets[i] = a.saved[i];
    if (want != local)
        free(want);
    return res;
}

static void remaining_tv(struct timeval *tv, uint64_t deadline)
{
    uint64_t now = fz_now_ns(), left = deadline > now ? deadline - now : 0;
    tv->tv_sec = (time_t)(left / 1000000000u);
    tv->tv_usec = (suseconds_t)(left % 1000000000u / 1000u);
}

FZ_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    if ((tv && tv->tv_sec == 0 && tv->tv_usec == 0) || nfds < 0 || nfds > FD_SETSIZE ||
        (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)) ||
        !fz_hook_self(FZ_HOOK_IO))
        return fz_real.select(nfds, r, w, e, tv);
    uint64_t deadline =
        tv ? fz_now_ns() + (uint64_t)tv->tv_sec * 1000000000u + (uint64_t)tv->tv_usec * 1000u : 0;
    int res = park_select(nfds, r, w, e, deadline);
    if (res == FZ_FALLBACK)
        return fz_real.select(nfds, r, w, e, tv);
    if (tv)
        remaining_tv(tv, deadline); /* Linux reports the time not slept */
    return res;
}

FZ_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                      const sigset_t *mask)
{
    if (mask || (ts && ts->tv_sec == 0 && ts->tv_nsec == 0) || nfds < 0 || nfds > FD_SETSIZE ||
        (ts && (!fz_timespec_valid(ts) || ts->tv_sec < 0)) || !fz_hook_self(FZ_HOOK_IO))
        return fz_real.pselect(nfds, r, w, e, ts, mask);
    int res = park_select(nfds, r, w, e, ts ? fz_rel_to_deadline(ts) : 0);
    return res == FZ_FALLBACK ? fz_real.pselect(nfds, r, w, e, ts, mask) : res;
}

/* ---- epoll_wait on the program's own epoll fd ------------------------ */

struct epoll_args {
    int epfd, max;
    struct epoll_event *events;
};

/* Once the program closed its epoll fd under the call, the instance is
 * the held copy's (a copy of an epoll fd is the same instance, interest
 * list and all). */
static int epoll_now(void *ctx, const struct holds *holds)
{
    struct epoll_args *a = ctx;
    int epfd = holds->n ? fz_fd_held_number(holds->at[0].file) : a->epfd;
    return fz_real.epoll_wait(epfd, a->events, a->max, 0);
}

static int park_epoll(int epfd, struct epoll_event *events, int max, uint64_t deadline)
{
    struct epoll_args a = {epfd, max, events};
    struct pollfd want = {epfd, POLLIN, 0};
    return wait_loop(&want, 1, true, deadline, epoll_now, &a);
}

FZ_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
    if (timeout == 0 || !fz_hook_self(FZ_HOOK_IO))
        return fz_real.epoll_wait(epfd, events, max, timeout);
    return park_epoll(epfd, events, max, ms_deadline(timeout));
}

FZ_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
                          const sigset_t *mask)
{
    if (mask)
        return fz_real.epoll_pwait(epfd, events, max, timeout, mask);
    return epoll_wait(epfd, events, max, timeout);
}

FZ_EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *ts,
                           const sigset_t *mask)
{
    if (mask || (ts && ts->tv_sec == 0 && ts->tv_nsec == 0) || !fz_hook_self(FZ_HOOK_IO))
        return fz_real.epoll_pwait2(epfd, events, max, ts, mask);
    if (ts && (!fz_timespec_valid(ts) || ts->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    return park_epoll(epfd, events, max, ts ? fz_rel_to_deadline(ts) : 0);
}
