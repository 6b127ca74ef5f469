/* Run-time configuration from FIBERIZE_* environment variables (see config.h).
 *
 * This runs inside the library constructor, before any carrier exists and
 * possibly before libc's stdio and malloc are safe to use from our hooks, so
 * it sticks to getenv, parsing written here and write(2) for messages.
 *
 * scripts/fiberize.c compiles this file into the command too, so that the
 * command accepts exactly the values the library accepts (fz_config_check).
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FZ_MAX_WORKERS 1024u
#define FZ_MAX_SIGNAL 64 /* SIGRTMAX on Linux x86_64 */

/* Usable defaults even if something reads the configuration before
 * fz_config_load runs; workers is refined there from the CPU affinity. */
struct fz_config fz_config = {
    .workers = 1,
    .stats = false,
    .stack_size = 0,
    .hooks = FZ_HOOK_ALL,
    .pool_max = 512,
    .handoff_us = 2000,
    .dump_signal = 0,
    .disabled = false,
};

/* ---- small string helpers (locale-free on purpose) ---- */

static char fz_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive: is s[0..n) exactly the NUL-terminated word? */
static bool fz_word_eq(const char *s, size_t n, const char *word)
{
    for (size_t i = 0; i < n; i++) {
        if (word[i] == '\0' || fz_lower(s[i]) != fz_lower(word[i]))
            return false;
    }
    return word[n] == '\0';
}

/* Case-insensitive: does s start with prefix? */
static bool fz_has_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strlen(s) >= n && fz_word_eq(s, n, prefix);
}

/* ---- numbers ---- */

/* Decimal digits only: no sign, spaces or base prefix, so that "0x10" or
 * " 4" is reported rather than silently read as something else. */
static bool fz_parse_digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool fz_parse_range(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v;

    if (!fz_parse_digits(s, strlen(s), &v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool fz_parse_size(const char *s, size_t *out)
{
    size_t n;
    unsigned shift = 0;
    uint64_t v;

    if (s == NULL)
        return false;
    n = strlen(s);
    if (n > 0) {
        switch (fz_lower(s[n - 1])) {
        case 'k':
            shift = 10;
            break;
        case 'm':
            shift = 20;
            break;
        case 'g':
            shift = 30;
            break;
        }
    }
    if (shift != 0)
        n--;
    if (!fz_parse_digits(s, n, &v) || v > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)v << shift;
    return true;
}

static bool fz_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "yes", "true"};
    static const char *const no[] = {"0", "no", "false"};
    size_t n = strlen(s);

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (fz_word_eq(s, n, yes[i]) || fz_word_eq(s, n, no[i])) {
            *out = fz_word_eq(s, n, yes[i]);
            return true;
        }
    }
    return false;
}

/* ---- FIBERIZE_HOOKS ---- */

static const struct {
    const char *name;
    unsigned bit;
} fz_families[] = {
    {"thread", FZ_HOOK_THREAD}, {"time", FZ_HOOK_TIME},       {"io", FZ_HOOK_IO},
    {"sync", FZ_HOOK_SYNC},     {"process", FZ_HOOK_PROCESS}, {"pool", FZ_HOOK_POOL},
};

static bool fz_family_bit(const char *s, size_t n, unsigned *bit)
{
    for (size_t i = 0; i < sizeof fz_families / sizeof fz_families[0]; i++) {
        if (fz_word_eq(s, n, fz_families[i].name)) {
            *bit = fz_families[i].bit;
            return true;
        }
    }
    return false;
}

/* One comma-separated entry: "all", "none", "family" adds, "-family" drops. */
static bool fz_apply_hook_entry(const char *s, size_t n, unsigned *set)
{
    bool drop;
    unsigned bit;

    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    drop = n > 0 && *s == '-';
    if (drop)
        s++, n--;
    if (!drop && fz_word_eq(s, n, "all")) {
        *set = FZ_HOOK_ALL;
        return true;
    }
    if (!drop && fz_word_eq(s, n, "none")) {
        *set = 0;
        return true;
    }
    if (!fz_family_bit(s, n, &bit))
        return false;
    *set = drop ? *set & ~bit : *set | bit;
    return true;
}

/* A list that starts by dropping ("-io,-pool") starts from every family; a
 * list that starts by naming ("thread,time") starts from none of them. */
static bool fz_parse_hooks(const char *s, unsigned *out)
{
    const char *p = s;
    unsigned set;

    while (*p == ' ' || *p == '\t')
        p++;
    set = *p == '-' ? FZ_HOOK_ALL : 0;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (!fz_apply_hook_entry(p, (size_t)(end - p), &set))
            return false;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    *out = set;
    return true;
}

/* ---- FIBERIZE_DUMP_SIGNAL ---- */

/* KILL and STOP are left out on purpose: no handler can be installed. */
static const struct {
    const char *name;
    int sig;
} fz_signals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL},     {"PWR", SIGPWR},   {"SYS", SIGSYS},
};

/* "RTMIN", "RTMIN+N", "RTMAX", "RTMAX-N" (prefix already checked). */
static bool fz_rt_signal(const char *s, int *out)
{
    bool from_min = fz_has_prefix(s, "RTMIN");
    int base = from_min ? SIGRTMIN : SIGRTMAX;
    const char *rest = s + 5;
    uint64_t off;

    if (*rest == '\0') {
        *out = base;
        return true;
    }
    if (*rest != (from_min ? '+' : '-'))
        return false;
    if (!fz_parse_range(rest + 1, 0, (uint64_t)(SIGRTMAX - SIGRTMIN), &off))
        return false;
    *out = from_min ? base + (int)off : base - (int)off;
    return true;
}

static bool fz_signal_name(const char *s, int *out)
{
    if (fz_has_prefix(s, "SIG"))
        s += 3;
    if (fz_has_prefix(s, "RTMIN") || fz_has_prefix(s, "RTMAX"))
        return fz_rt_signal(s, out);
    for (size_t i = 0; i < sizeof fz_signals / sizeof fz_signals[0]; i++) {
        if (fz_word_eq(s, strlen(s), fz_signals[i].name)) {
            *out = fz_signals[i].sig;
            return true;
        }
    }
    return false;
}

/* A number 1..64 or a name; 0 or "off" switches the dump off. */
static bool fz_parse_signal(const char *s, int *out)
{
    uint64_t v;

    if (fz_word_eq(s, strlen(s), "off")) {
        *out = 0;
        return true;
    }
    if (fz_parse_range(s, 0, FZ_MAX_SIGNAL, &v)) {
        if (v == SIGKILL || v == SIGSTOP)
            return false;
        *out = (int)v;
        return true;
    }
    return fz_signal_name(s, out);
}

/* ---- one parser per variable: store into c only when the value is valid ---- */

static bool fz_set_workers(const char *s, struct fz_config *c)
{
    uint64_t v;
    if (!fz_parse_range(s, 1, FZ_MAX_WORKERS, &v))
        return false;
    c->workers = (unsigned)v;
    return true;
}

static bool fz_set_stats(const char *s, struct fz_config *c)
{
    return fz_parse_bool(s, &c->stats);
}

static bool fz_set_stack_size(const char *s, struct fz_config *c)
{
    size_t v;
    if (!fz_parse_size(s, &v) || v < ((size_t)16 << 10) || v > ((size_t)1 << 30))
        return false;
    c->stack_size = v;
    return true;
}

static bool fz_set_hooks(const char *s, struct fz_config *c)
{
    return fz_parse_hooks(s, &c->hooks);
}

static bool fz_set_pool_max(const char *s, struct fz_config *c)
{
    uint64_t v;
    if (!fz_parse_range(s, 1, 65536, &v))
        return false;
    c->pool_max = (unsigned)v;
    return true;
}

static bool fz_set_handoff_us(const char *s, struct fz_config *c)
{
    uint64_t v;
    if (!fz_parse_range(s, 50, 10000000, &v))
        return false;
    c->handoff_us = (unsigned)v;
    return true;
}

static bool fz_set_file_io(const char *s, struct fz_config *c)
{
    if (strcmp(s, "inline") == 0)
        c->file_io_pool = false;
    else if (strcmp(s, "pool") == 0)
        c->file_io_pool = true;
    else
        return false;
    return true;
}

static bool fz_set_dump_signal(const char *s, struct fz_config *c)
{
    return fz_parse_signal(s, &c->dump_signal);
}

static bool fz_set_dump_file(const char *s, struct fz_config *c)
{
    size_t n = strlen(s);
    if (n >= sizeof c->dump_file)
        return false;
    memcpy(c->dump_file, s, n + 1);
    return true;
}

static bool fz_set_control(const char *s, struct fz_config *c)
{
    return fz_parse_bool(s, &c->control);
}

static bool fz_set_disabled(const char *s, struct fz_config *c)
{
    return fz_parse_bool(s, &c->disabled);
}

static bool fz_set_seed(const char *s, struct fz_config *c)
{
    uint64_t v;
    if (!fz_parse_range(s, 0, UINT64_MAX, &v))
        return false;
    c->seed = v;
    c->seeded = true;
    return true;
}

static bool fz_set_seed_depth(const char *s, struct fz_config *c)
{
    uint64_t v;
    if (!fz_parse_range(s, 1, 16, &v))
        return false;
    c->seed_depth = (unsigned)v;
    return true;
}

static bool fz_set_seed_steps(const char *s, struct fz_config *c)
{
    uint64_t v;
    if (!fz_parse_range(s, 1, 1000000000000ull, &v))
        return false;
    c->seed_steps = v;
    return true;
}

static bool fz_set_seed_report(const char *s, struct fz_config *c)
{
    size_t n = strlen(s);
    if (n >= sizeof c->seed_report)
        return false;
    memcpy(c->seed_report, s, n + 1);
    return true;
}

#define FZ_BOOL_FORM "0, 1, yes, no, true or false"

static const struct fz_var {
    const char *name;
    const char *expected; /* the accepted form, quoted in messages */
    bool (*set)(const char *value, struct fz_config *c);
} fz_vars[] = {
    {"FIBERIZE_WORKERS", "an integer from 1 to 1024", fz_set_workers},
    {"FIBERIZE_STATS", FZ_BOOL_FORM, fz_set_stats},
    {"FIBERIZE_STACK_SIZE", "a size from 16K to 1G, such as 65536, 64K or 8M", fz_set_stack_size},
    {"FIBERIZE_HOOKS",
     "all, none, or a comma list of thread,time,io,sync,process,pool "
     "(entries starting with '-' drop that family from all)",
     fz_set_hooks},
    {"FIBERIZE_POOL_MAX", "an integer from 1 to 65536", fz_set_pool_max},
    {"FIBERIZE_HANDOFF_US", "an integer from 50 to 10000000", fz_set_handoff_us},
    {"FIBERIZE_FILE_IO", "inline or pool", fz_set_file_io},
    {"FIBERIZE_DUMP_SIGNAL",
     "a signal number from 1 to 64 or a name such as QUIT, SIGUSR2 or RTMIN+3 "
     "(not KILL or STOP), or 0/off",
     fz_set_dump_signal},
    {"FIBERIZE_DUMP_FILE", "a file name shorter than 512 bytes", fz_set_dump_file},
    {"FIBERIZE_CONTROL", FZ_BOOL_FORM, fz_set_control},
    {"FIBERIZE_DISABLE", FZ_BOOL_FORM, fz_set_disabled},
    {"FIBERIZE_SEED", "an integer from 0 to 18446744073709551615", fz_set_seed},
    {"FIBERIZE_SEED_DEPTH", "an integer from 1 to 16", fz_set_seed_depth},
    {"FIBERIZE_SEED_STEPS", "an integer from 1 to 1000000000000", fz_set_seed_steps},
    {"FIBERIZE_SEED_REPORT", "a file name shorter than 512 bytes", fz_set_seed_report},
};

#define FZ_NVARS (sizeof fz_vars / sizeof fz_vars[0])

/* ---- messages: one line, one write(2), so lines from processes sharing
 * stderr do not interleave ---- */

struct fz_line {
    char buf[768];
    size_t len;
};

static void fz_put(struct fz_line *l, const char *s)
{
    while (*s != '\0' && l->len < sizeof l->buf - 1)
        l->buf[l->len++] = *s++;
}

/* The value is user input: escape what could break the line or the quotes,
 * and cut it short so the accepted form always fits. */
static void fz_put_value(struct fz_line *l, const char *v)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < 64 && v[i] != '\0'; i++) {
        unsigned char c = (unsigned char)v[i];
        char esc[5] = {(char)c, '\0'};
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15];
            esc[4] = '\0';
        }
        fz_put(l, esc);
    }
    if (v[i] != '\0')
        fz_put(l, "...");
}

static void fz_write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(2, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w, n -= (size_t)w;
    }
}

static void fz_warn(const struct fz_var *v, const char *value)
{
    struct fz_line l = {.len = 0};

    fz_put(&l, "fiberize: ignoring ");
    fz_put(&l, v->name);
    fz_put(&l, "=\"");
    fz_put_value(&l, value);
    fz_put(&l, "\": expected ");
    fz_put(&l, v->expected);
    fz_put(&l, "; using the default");
    l.buf[l.len++] = '\n'; /* fz_put always leaves room for this */
    fz_write_all(l.buf, l.len);
}

/* ---- loading ---- */

static unsigned fz_clamp_workers(long n)
{
    if (n < 1)
        return 1;
    return n > (long)FZ_MAX_WORKERS ? FZ_MAX_WORKERS : (unsigned)n;
}

/* The CPUs this process may run on (taskset, cgroups cpusets), not the
 * machine's count: more carriers than that only adds contention. */
static unsigned fz_default_workers(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return fz_clamp_workers(CPU_COUNT(&set));
    /* More CPUs than cpu_set_t holds makes the call fail: ask sysconf. */
    return fz_clamp_workers(sysconf(_SC_NPROCESSORS_ONLN));
}

static void fz_config_defaults(struct fz_config *c)
{
    *c = (struct fz_config){
        .workers = fz_default_workers(),
        .stats = false,
        .stack_size = 0,
        .hooks = FZ_HOOK_ALL,
        .pool_max = 512,
        .handoff_us = 2000,
        .dump_signal = 0,
        .disabled = false,
        .seed_depth = 3,
        .seed_steps = 1000,
    };
}

void fz_config_load(void)
{
    int saved_errno = errno; /* the constructor must not disturb the program */

    fz_config_defaults(&fz_config);
    for (size_t i = 0; i < FZ_NVARS; i++) {
        const char *value = getenv(fz_vars[i].name);
        if (value == NULL || value[0] == '\0') /* empty means unset */
            continue;
        if (!fz_vars[i].set(value, &fz_config))
            fz_warn(&fz_vars[i], value);
    }
    errno = saved_errno;
}

/* For the fiberize command: NULL if value is valid for the variable name,
 * otherwise the accepted form.  Unused inside the library itself. */
__attribute__((unused)) static const char *fz_config_check(const char *name, const char *value)
{
    struct fz_config scratch;

    for (size_t i = 0; i < FZ_NVARS; i++) {
        if (strcmp(fz_vars[i].name, name) == 0)
            return fz_vars[i].set(value, &scratch) ? NULL : fz_vars[i].expected;
    }
    return "a known FIBERIZE_* variable";
}
