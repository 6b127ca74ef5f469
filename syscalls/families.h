/* The interposer families and what the interposers are told at start-up.
 *
 * The families are the syscalls layer's division of its interposers;
 * FIBERIZE_HOOKS names them (preload/config.c parses it into these bits).
 * fz_hook_settings is set once by the library constructor, before the
 * runtime starts, and read-only afterwards: the interposers never read
 * preload/'s configuration themselves.  No includes on purpose: the
 * fiberize command compiles preload/config.c, which includes this file.
 */
#ifndef FZ_FAMILIES_H
#define FZ_FAMILIES_H

/* Hook families that FIBERIZE_HOOKS can switch off (all on by default). */
enum fz_hook_family {
    FZ_HOOK_THREAD = 1u << 0,  /* pthread_create & co: threads become fibers */
    FZ_HOOK_TIME = 1u << 1,    /* sleep, nanosleep, sched_yield ... */
    FZ_HOOK_IO = 1u << 2,      /* read/write/accept/connect/poll ... */
    FZ_HOOK_SYNC = 1u << 3,    /* mutex, cond, rwlock, sem, futex */
    FZ_HOOK_PROCESS = 1u << 4, /* waitpid, system, fork ... */
    FZ_HOOK_POOL = 1u << 5,    /* blocking-pool offloads (DNS, fsync ...) */
    FZ_HOOK_ALL = (1u << 6) - 1,
};

struct fz_hook_settings {
    unsigned families;  /* enum fz_hook_family bits: the families to handle */
    _Bool file_io_pool; /* regular-file reads and writes go to the blocking pool */
};

/* Defined in syscalls/hook.c.  Until the constructor sets it (another
 * library's constructor may call us first) every family is on; the runtime
 * is off then, so each call is the real one anyway. */
extern struct fz_hook_settings fz_hook_settings;

#endif
