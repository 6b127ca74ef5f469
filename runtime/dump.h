/* Fiber dumps: what every fiber is doing, with its backtrace, for people.
 *
 * The engine lives here; preload/observe.c decides when a dump is made
 * (the dump signal, `fiberize dump PID`) and hands in what the runtime may
 * not reach by itself: libunwind (loaded privately, see observe.c) and the
 * real sigaction.  Without libunwind a dump still lists every fiber and
 * its wait, without backtraces.
 */
#ifndef FZ_DUMP_H
#define FZ_DUMP_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

/* libunwind's local-unwinding entry points, as resolved by preload/.  The
 * cursor and context are libunwind's unw_cursor_t and unw_context_t
 * (ucontext_t on x86_64). */
struct fz_unwinder {
    int (*init_local2)(void *cursor, void *context, int flags);
    int (*step)(void *cursor);
    int (*get_reg)(void *cursor, int reg, unsigned long *value);
    int (*get_proc_name)(void *cursor, char *buf, size_t len, unsigned long *offset);
    int (*is_signal_frame)(void *cursor);
};

struct fz_dump_settings {
    const struct fz_unwinder *unwinder;                                  /* NULL: no backtraces */
    int (*sigaction)(int, const struct sigaction *, struct sigaction *); /* the real one */
};

/* Once, before the first dump, from a thread with a sane thread pointer. */
void fz_dump_setup(const struct fz_dump_settings *s);

/* Write a dump of every fiber, carrier and runtime thread to fd.  Runs on
 * an OS thread that is neither a fiber nor a carrier; one dump at a time
 * (the caller serialises).  The program keeps running: running fibers are
 * sampled by a signal to their carrier (which unwinds itself and goes on),
 * parked ones are held switched out only while their stack is read. */
void fz_dump_write(int fd);

/* A dump is running (the monitor does not count carriers waiting for a
 * held fiber as stuck). */
extern atomic_int fz_dump_running;

struct fz_fiber;
/* Carrier side: f is held by a dump; sleep until it is released
 * (dump_hold: 0 free, 1 held, 2 held and a carrier sleeps on it). */
void fz_dump_wait_hold(struct fz_fiber *f);

/* The signal carriers are sampled with while a dump runs (borrowed, then
 * given back to whatever the program installed). */
#define FZ_DUMP_SAMPLE_SIGNAL SIGURG

#endif
