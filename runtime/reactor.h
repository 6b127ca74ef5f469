/* Reactor: fiber waits on fd readiness, on the driver's epoll instance.
 *
 * Each fd the program does I/O on is registered once, edge-triggered, with
 * its number and a generation in the event data, so an event for a closed
 * fd never wakes whoever got the same number next.  Per fd and direction a
 * readiness sequence number closes the race between "the attempt said
 * EAGAIN" and "park": a waiter snapshots the sequence before its attempt
 * and parks only if no edge came in between.
 */
#ifndef FZ_REACTOR_H
#define FZ_REACTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "runtime/park.h"

struct fz_carrier;

enum fz_dir { FZ_READ = 0, FZ_WRITE = 1 };

enum fz_fd_kind {
    FZ_FD_UNKNOWN = 0,
    FZ_FD_POLLABLE,   /* registered with the driver */
    FZ_FD_UNPOLLABLE, /* epoll refuses it (regular file ...): do the real call */
};

struct fz_fd; /* opaque */

/* State of fd, registering it on first use; NULL if fd is out of range or
 * cannot be tracked.  Caller checks fz_fd_kind(). */
struct fz_fd *fz_fd_get(int fd);
/* The same for an fd the runtime opened itself that only signals readiness
 * (a pidfd): blocking, not a stream, so registered without asking. */
struct fz_fd *fz_fd_get_event_fd(int fd);
int fz_fd_kind(struct fz_fd *s);
uint32_t fz_fd_gen(struct fz_fd *s);
uint32_t fz_fd_seq(struct fz_fd *s, int dir);
/* Predicting EAGAIN: a read found the stream fd empty (EAGAIN, or a short
 * read, which empties a pipe or stream socket) when its read sequence was
 * seq.  Data arriving later raises an edge, which bumps the sequence; so
 * while it is still seq, a read would say EAGAIN and can park at once --
 * unless the peer hung up: then EOF may wait behind the data just read. */
void fz_fd_note_empty(struct fz_fd *s, uint32_t seq);
bool fz_fd_known_empty(struct fz_fd *s, uint32_t seq);
/* An error the kernel reports once (a socket's pending error, SO_ERROR:
 * ECONNRESET ...) that a hidden retry took after part of a transfer had
 * moved: the program's next call on the fd gets it, as natively the
 * kernel would have left it there.  Forgotten with the fd. */
void fz_fd_keep_error(struct fz_fd *s, int err);
bool fz_fd_error_kept(struct fz_fd *s);
int fz_fd_take_error(struct fz_fd *s); /* 0: none kept */
/* The error kept for fd, left in place (0: none); cheap when none is kept
 * anywhere, and never registers fd. */
int fz_fd_kept_error_of(int fd);
/* The program's view of O_NONBLOCK (we never change the real flag). */
bool fz_fd_nonblock(struct fz_fd *s);
void fz_fd_set_nonblock(int fd, bool on);
/* SO_RCVTIMEO / SO_SNDTIMEO as the program set them (ns, 0 = none). */
uint64_t fz_fd_timeout(struct fz_fd *s, int dir);
void fz_fd_set_timeout(int fd, int dir, uint64_t ns);
/* A SOCK_STREAM socket: read and write on it are recv and send without
 * flags (recv(2)), so an attempt may take the socket calls' shorter path. */
bool fz_fd_stream_socket(struct fz_fd *s);
/* The attempt cannot be made non-blocking (RWF_NOWAIT unsupported). */
bool fz_fd_no_nowait(struct fz_fd *s);
void fz_fd_set_no_nowait(struct fz_fd *s);
/* One fiber at a time may make a call that has no non-blocking form
 * (accept) after a readiness check; the others park on readiness.  Ending
 * a turn that made progress lets them retry (there may be more); ending
 * one that found nothing ready must not, or the turn-taker would spin. */
bool fz_fd_take_turn(struct fz_fd *s);
void fz_fd_end_turn(struct fz_fd *s, bool progressed);
/* Something changed fd's state behind epoll's back (shutdown): wake its
 * waiters so they retry. */
void fz_fd_kick(int fd);
/* The highest fd number the table has room for now (for range closes). */
unsigned fz_fd_highest_known(void);
/* fd was closed or replaced: wake its waiters and forget its state. */
void fz_fd_forget(int fd);

/* The program closes fd (before the real close): as fz_fd_forget, except
 * that parked holding watches (fz_fd_wait_following's calls, watches with
 * `hold`) keep the file and go on waiting on a hidden copy of it, as a
 * blocked system call's reference keeps it natively (the peer sees no
 * hang-up, later data reaches them). */
unsigned fz_fd_close(int fd);
/* After the real close of fd (or a stream's), with what fz_fd_close
 * returned: a call that parked between fz_fd_close and the close itself
 * found the number still open and waits on a file that is gone now; it is
 * woken to find out, and what it learnt about the number (its
 * registration) is forgotten -- unless the number was forgotten again
 * meanwhile (a new file took it: its own state is not touched). */
void fz_fd_closed(int fd, unsigned token);

/* Park until dir is ready (an edge after `seq`), the deadline passes or a
 * signal interrupts.  0 ready, ETIMEDOUT, EINTR, or EBADF if the fd was
 * closed meanwhile. */
int fz_fd_wait(struct fz_fd *s, int dir, uint32_t seq, uint64_t deadline);
/* The same for a call that can go on with another number: *gen is the
 * generation the call began on (EBADF if it has changed before the park).
 * If the program closed the fd while the call was parked, *s and *gen
 * become the held copy's, whose number (fz_fd_number) the call uses from
 * then on; it then returns 0 (try again), ETIMEDOUT or EINTR.  Every call
 * that used this ends with fz_fd_call_over. */
int fz_fd_wait_following(struct fz_fd **s, uint32_t *gen, int dir, uint32_t seq, uint64_t deadline);
int fz_fd_number(struct fz_fd *s);
/* A call that began on `began` and waited through fz_fd_wait_following is
 * over; `now` is its last *s (NULL after a cancellation that did not
 * unwind).  If it moved to a held copy, the copy's last call closes it.
 * Raw system calls only: the call's errno is left as it is. */
void fz_fd_call_over(const struct fz_fd *began, struct fz_fd *now);

/* A file kept open for parked calls whose number the program closed. */
struct fz_held;

/* Several fds at once (poll/select/epoll_wait): one node per fd. */
struct fz_fd_watch {
    struct fz_fd *fd;
    uint32_t gen; /* the generation watched */
    uint32_t seq[2];
    bool want[2];
    bool hold;            /* in: a close while parked keeps the file for this call */
    bool counted;         /* counted in fd's `waiting` while linked (reactor only) */
    bool closed;          /* out: the generation ended, the file was not held */
    struct fz_held *held; /* out: the close moved the file here; the caller
                             owns a share of it (fz_fd_held_done) */
    struct fz_fd_watch *next[2], *prev[2]; /* per-direction waiter lists */
    struct fz_waiter *waiter;
};
/* Snapshot generation and sequences (before the non-blocking check). */
void fz_fd_watch_prepare(struct fz_fd_watch *w, struct fz_fd *fd, bool rd, bool wr);
/* 0 woken by readiness (or by a close: see `closed` and `held`),
 * ETIMEDOUT, EINTR (intr: enum fz_intr). */
int fz_fd_watch_wait(struct fz_fd_watch *ws, int n, uint64_t deadline, int intr);
/* w->held is set: watch the held copy instead, from the moment it was made
 * (an event on it since then makes the next wait return at once). */
void fz_fd_watch_follow(struct fz_fd_watch *w);
/* The copy's entry, to watch again after a check. */
struct fz_fd *fz_fd_held_entry(const struct fz_held *h);
/* The copy's number now, for a call made on the file itself. */
int fz_fd_held_number(const struct fz_held *h);
/* A call that took a share of h (w->held) is done with it; the last share
 * closes the copy. */
void fz_fd_held_done(struct fz_held *h);

/* For stats: fds registered with the driver now (a racy count). */
unsigned fz_reactor_registered(void);

/* fork child: every fd registers again with the child's epoll instance. */
void fz_reactor_after_fork(void);

/* Driver side: an epoll event whose data is `token` fired. */
void fz_reactor_dispatch(struct fz_carrier *c, uint64_t token, uint32_t events);

#endif
