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
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include "runtime/reactor.h"
#include "syscalls/hook.h"

typedef int (*check_fn)(void *ctx);

static uint64_t ms_deadline(int timeout)
{
    return timeout < 0 ? 0 : fz_now_ns() + (uint64_t)timeout * 1000000u;
}

/* Prepare one watch per pollable fd; returns how many. */
static int prepare(struct fz_fd_watch *ws, const struct pollfd *want, nfds_t n)
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
        fz_fd_watch_prepare(&ws[k++], s, rd || !wr, wr);
    }
    return k;
}

/* check() until it reports something, parking on `want` in between. */
static int wait_loop(const struct pollfd *want, nfds_t n, uint64_t deadline, check_fn check,
                     void *ctx)
{
    struct fz_fd_watch local[64], *ws = local;
    if (n > 64 && !(ws = malloc(sizeof *ws * n)))
        return FZ_FALLBACK;
    /* from before the first check: a signal handled anywhere in the call
     * ends it (never restarted), as it ends the one system call natively */
    unsigned call = fz_call_begin(FZ_INTR_ALWAYS);
    int r;
    for (;;) {
        int k = prepare(ws, want, n);
        r = check(ctx);
        if (r != 0)
            break;
        if (deadline && fz_now_ns() >= deadline)
            break;
        int w = fz_fd_watch_wait(ws, k, deadline, FZ_INTR_ALWAYS); /* never restarted */
        if (w == EINTR) {
            fz_cancel_point();
            errno = EINTR;
            r = -1;
            break;
        }
        if (w == ETIMEDOUT) {
            r = check(ctx);
            break;
        }
    }
    fz_call_end(call);
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

static int poll_now(void *ctx)
{
    struct poll_args *a = ctx;
    return with_kept_errors(a->fds, a->n, fz_real.poll(a->fds, a->n, 0));
}

static int park_poll(struct pollfd *fds, nfds_t n, uint64_t deadline)
{
    struct poll_args a = {fds, n};
    return wait_loop(fds, n, deadline, poll_now, &a);
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

static int select_now(void *ctx)
{
    struct select_args *a = ctx;
    for (int i = 0; i < 3; i++)
        if (a->sets[i])
            *a->sets[i] = a->saved[i];
    struct timeval zero = {0, 0};
    return fz_real.select(a->nfds, a->sets[0], a->sets[1], a->sets[2], &zero);
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
    int res = wait_loop(want, n, deadline, select_now, &a);
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

static int epoll_now(void *ctx)
{
    struct epoll_args *a = ctx;
    return fz_real.epoll_wait(a->epfd, a->events, a->max, 0);
}

static int park_epoll(int epfd, struct epoll_event *events, int max, uint64_t deadline)
{
    struct epoll_args a = {epfd, max, events};
    struct pollfd want = {epfd, POLLIN, 0};
    return wait_loop(&want, 1, deadline, epoll_now, &a);
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
