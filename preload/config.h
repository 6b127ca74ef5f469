/* Run-time configuration from FIBERIZE_* environment variables.
 *
 * Read once by the library constructor (fz_config_load) before any carrier
 * exists; read-only afterwards, so any thread may read it without locking.
 * A malformed value prints one line on stderr naming the variable and the
 * accepted form, and the default is kept: configuration never stops a program.
 */
#ifndef FZ_CONFIG_H
#define FZ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "../syscalls/families.h" /* enum fz_hook_family */

struct fz_config {
    unsigned workers;    /* FIBERIZE_WORKERS: carriers, 1..1024; default CPUs we may use */
    bool stats;          /* FIBERIZE_STATS: 0/1/yes/no/true/false; print counters at exit */
    size_t stack_size;   /* FIBERIZE_STACK_SIZE: bytes, accepts K/M/G suffix; 16K..1G;
                            default 0 = what native threads get (RLIMIT_STACK) */
    unsigned hooks;      /* FIBERIZE_HOOKS: comma list of families to keep, or "all",
                            "none", or "-family" entries to drop; default FZ_HOOK_ALL */
    unsigned pool_max;   /* FIBERIZE_POOL_MAX: 1..65536, default 512 */
    unsigned handoff_us; /* FIBERIZE_HANDOFF_US: 50..10000000, default 2000 */
    bool file_io_pool;   /* FIBERIZE_FILE_IO: "inline" (default) or "pool": where fibers
                            read and write regular files */
    int dump_signal;     /* FIBERIZE_DUMP_SIGNAL: signal number or name (QUIT, SIGUSR2)
                            that makes the program write a fiber dump; 0 = off (default) */
    char dump_file[512]; /* FIBERIZE_DUMP_FILE: where dumps go (appended); "" = stderr */
    bool control;        /* FIBERIZE_CONTROL: open the control socket that `fiberize dump
                            PID` and `fiberize stats PID` talk to; default off */
    bool disabled;       /* FIBERIZE_DISABLE=1: every hook passes straight through */
    /* deterministic schedules (fiberize --seed, runtime/det.c) */
    bool seeded;                   /* FIBERIZE_SEED given: one carrier, schedule from the seed */
    unsigned long long seed;       /* FIBERIZE_SEED: 0..2^64-1 */
    unsigned seed_depth;           /* FIBERIZE_SEED_DEPTH: PCT's d, 1..16, default 3 */
    unsigned long long seed_steps; /* FIBERIZE_SEED_STEPS: PCT's k, 1..10^12, default 1000 */
    char seed_report[512];         /* FIBERIZE_SEED_REPORT: file for "seed= steps= fingerprint=" */
};

extern struct fz_config fz_config;

/* Parse the environment into fz_config.  Uses only getenv, strtoull-style
 * parsing written here and write(2) for messages (no stdio, no malloc): it
 * runs inside the library constructor. */
void fz_config_load(void);

/* Parse a size such as "65536", "64K", "8M", "1G" (case-insensitive suffix,
 * powers of 1024).  Returns false on malformed input or overflow. */
bool fz_parse_size(const char *s, size_t *out);

#endif
