/* Unit test for preload/config.c: size parsing, every FIBERIZE_* variable,
 * and the one-line message for a malformed value.
 *
 * The Makefile pairs tests/unit/test_X.c with runtime/X.c; the configuration
 * lives in preload/, so this one test includes the file under test instead. */
#include "../../preload/config.c"

#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const all_vars[] = {
    "FIBERIZE_WORKERS",   "FIBERIZE_STATS",      "FIBERIZE_STACK_SIZE",  "FIBERIZE_HOOKS",
    "FIBERIZE_POOL_MAX",  "FIBERIZE_HANDOFF_US", "FIBERIZE_DUMP_SIGNAL", "FIBERIZE_DISABLE",
    "FIBERIZE_DUMP_FILE", "FIBERIZE_CONTROL",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
}

/* Load with one variable set; returns what fz_config_load wrote on stderr. */
static const char *load_with(const char *name, const char *value)
{
    static char captured[2048];
    int pipefd[2], saved_stderr;
    ssize_t n;

    clear_env();
    if (name != NULL)
        setenv(name, value, 1);
    fflush(stderr);
    if (pipe(pipefd) != 0)
        abort();
    saved_stderr = dup(2);
    dup2(pipefd[1], 2);
    close(pipefd[1]);
    fz_config_load();
    dup2(saved_stderr, 2);
    close(saved_stderr);
    n = read(pipefd[0], captured, sizeof captured - 1);
    close(pipefd[0]);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

static bool size_is(const char *s, size_t want)
{
    size_t got = 0;
    return fz_parse_size(s, &got) && got == want;
}

static bool size_rejected(const char *s)
{
    size_t got;
    return !fz_parse_size(s, &got);
}

static void test_parse_size(void)
{
    TAP_CHECK(size_is("65536", 65536), "plain bytes");
    TAP_CHECK(size_is("64K", 64 << 10) && size_is("64k", 64 << 10), "K suffix, any case");
    TAP_CHECK(size_is("8M", 8 << 20) && size_is("1G", (size_t)1 << 30), "M and G suffixes");
    TAP_CHECK(size_is("0", 0), "zero parses (range is the caller's business)");
    TAP_CHECK(size_rejected("") && size_rejected("K") && size_rejected("12Q"),
              "empty, bare suffix and unknown suffix rejected");
    TAP_CHECK(size_rejected("-1") && size_rejected(" 1") && size_rejected("1 ") &&
                  size_rejected("0x10") && size_rejected("1KB"),
              "signs, spaces, hex and two-letter suffixes rejected");
    TAP_CHECK(size_rejected("18446744073709551616") && size_rejected("17179869184G"),
              "overflow rejected");
    TAP_CHECK(size_rejected(NULL), "NULL rejected");
}

static void test_defaults(void)
{
    cpu_set_t set;
    const char *err = load_with(NULL, NULL);

    sched_getaffinity(0, sizeof set, &set);
    TAP_CHECK(fz_config.workers == (unsigned)CPU_COUNT(&set),
              "workers default = CPUs in affinity (%u)", fz_config.workers);
    TAP_CHECK(!fz_config.stats && fz_config.stack_size == 0 && fz_config.hooks == FZ_HOOK_ALL &&
                  fz_config.pool_max == 512 && fz_config.handoff_us == 2000 &&
                  fz_config.dump_signal == 0 && !fz_config.disabled &&
                  fz_config.dump_file[0] == '\0' && !fz_config.control,
              "other defaults (no dump signal, no control socket)");
    TAP_CHECK(err[0] == '\0', "no message without variables");
    err = load_with("FIBERIZE_WORKERS", "");
    TAP_CHECK(err[0] == '\0' && fz_config.workers == (unsigned)CPU_COUNT(&set),
              "empty value counts as unset");
}

static void test_valid_values(void)
{
    load_with("FIBERIZE_WORKERS", "3");
    TAP_CHECK(fz_config.workers == 3, "FIBERIZE_WORKERS=3");
    load_with("FIBERIZE_WORKERS", "1024");
    TAP_CHECK(fz_config.workers == 1024, "FIBERIZE_WORKERS=1024");
    load_with("FIBERIZE_STATS", "yes");
    TAP_CHECK(fz_config.stats, "FIBERIZE_STATS=yes");
    load_with("FIBERIZE_STATS", "TRUE");
    TAP_CHECK(fz_config.stats, "FIBERIZE_STATS=TRUE");
    load_with("FIBERIZE_STACK_SIZE", "64K");
    TAP_CHECK(fz_config.stack_size == 64 << 10, "FIBERIZE_STACK_SIZE=64K");
    load_with("FIBERIZE_POOL_MAX", "65536");
    TAP_CHECK(fz_config.pool_max == 65536, "FIBERIZE_POOL_MAX=65536");
    load_with("FIBERIZE_HANDOFF_US", "50");
    TAP_CHECK(fz_config.handoff_us == 50, "FIBERIZE_HANDOFF_US=50");
    load_with("FIBERIZE_DISABLE", "1");
    TAP_CHECK(fz_config.disabled, "FIBERIZE_DISABLE=1");
}

static unsigned hooks_for(const char *value)
{
    load_with("FIBERIZE_HOOKS", value);
    return fz_config.hooks;
}

static void test_hooks(void)
{
    TAP_CHECK(hooks_for("none") == 0, "hooks none");
    TAP_CHECK(hooks_for("all") == FZ_HOOK_ALL, "hooks all");
    TAP_CHECK(hooks_for("thread,time") == (FZ_HOOK_THREAD | FZ_HOOK_TIME), "hooks exact list");
    TAP_CHECK(hooks_for("-io,-pool") == (FZ_HOOK_ALL & ~(FZ_HOOK_IO | FZ_HOOK_POOL)),
              "hooks all minus list");
    TAP_CHECK(hooks_for("all,-sync") == (FZ_HOOK_ALL & ~FZ_HOOK_SYNC), "hooks all,-sync");
    TAP_CHECK(hooks_for("IO, Process") == (FZ_HOOK_IO | FZ_HOOK_PROCESS),
              "hooks ignore case and spaces");
    TAP_CHECK(hooks_for("thread,bogus") == FZ_HOOK_ALL, "unknown family keeps the default");
    TAP_CHECK(hooks_for("thread,") == FZ_HOOK_ALL, "empty entry keeps the default");
}

static int signal_for(const char *value)
{
    load_with("FIBERIZE_DUMP_SIGNAL", value);
    return fz_config.dump_signal;
}

static void test_dump_signal(void)
{
    TAP_CHECK(signal_for("10") == 10, "signal by number");
    TAP_CHECK(signal_for("USR1") == SIGUSR1 && signal_for("SIGUSR2") == SIGUSR2,
              "signal by name, with or without SIG");
    TAP_CHECK(signal_for("sigquit") == SIGQUIT, "signal names ignore case");
    TAP_CHECK(signal_for("RTMIN+3") == SIGRTMIN + 3 && signal_for("SIGRTMAX-1") == SIGRTMAX - 1,
              "real-time signals");
    TAP_CHECK(signal_for("0") == 0 && signal_for("off") == 0, "0 and off disable the dump");
    TAP_CHECK(signal_for("65") == 0 && signal_for("KILL") == 0 && signal_for("9") == 0 &&
                  signal_for("RTMIN+99") == 0 && signal_for("NOPE") == 0,
              "bad signals keep the default (off)");
    load_with("FIBERIZE_DUMP_FILE", "/tmp/x.dump");
    TAP_CHECK(strcmp(fz_config.dump_file, "/tmp/x.dump") == 0, "FIBERIZE_DUMP_FILE is kept");
    load_with("FIBERIZE_CONTROL", "1");
    TAP_CHECK(fz_config.control, "FIBERIZE_CONTROL=1 asks for the control socket");
}

/* Field by field: the struct has padding, so memcmp would be wrong. */
static bool same_config(const struct fz_config *a, const struct fz_config *b)
{
    return a->workers == b->workers && a->stats == b->stats && a->stack_size == b->stack_size &&
           a->hooks == b->hooks && a->pool_max == b->pool_max && a->handoff_us == b->handoff_us &&
           a->dump_signal == b->dump_signal && a->disabled == b->disabled &&
           strcmp(a->dump_file, b->dump_file) == 0 && a->control == b->control;
}

/* Each malformed value: default kept, exactly one line naming the variable,
 * quoting the value and giving the accepted form. */
static void check_rejected(const char *name, const char *value, const char *form)
{
    char want[256];
    const char *err;
    struct fz_config before;

    load_with(NULL, NULL);
    before = fz_config;
    err = load_with(name, value);
    snprintf(want, sizeof want, "fiberize: ignoring %s=\"%s\": expected ", name, value);
    TAP_CHECK(same_config(&before, &fz_config), "%s=%s keeps defaults", name, value);
    TAP_CHECK(strncmp(err, want, strlen(want)) == 0 && strstr(err, form) != NULL &&
                  strstr(err, "; using the default\n") != NULL &&
                  strchr(err, '\n') == err + strlen(err) - 1,
              "%s=%s gives one message line: %.*s", name, value, (int)strcspn(err, "\n"), err);
}

static void test_rejected(void)
{
    check_rejected("FIBERIZE_WORKERS", "abc", "an integer from 1 to 1024");
    check_rejected("FIBERIZE_WORKERS", "0", "an integer from 1 to 1024");
    check_rejected("FIBERIZE_WORKERS", "1025", "an integer from 1 to 1024");
    check_rejected("FIBERIZE_STATS", "maybe", "yes, no");
    check_rejected("FIBERIZE_STACK_SIZE", "12Q", "16K to 1G");
    check_rejected("FIBERIZE_STACK_SIZE", "8K", "16K to 1G");
    check_rejected("FIBERIZE_STACK_SIZE", "2G", "16K to 1G");
    check_rejected("FIBERIZE_HOOKS", "files", "thread,time,io");
    check_rejected("FIBERIZE_POOL_MAX", "65537", "1 to 65536");
    check_rejected("FIBERIZE_HANDOFF_US", "49", "50 to 10000000");
    check_rejected("FIBERIZE_DUMP_SIGNAL", "STOP", "QUIT");
    check_rejected("FIBERIZE_DISABLE", "-1", "yes, no");
}

static void test_message_escaping(void)
{
    const char *err = load_with("FIBERIZE_WORKERS", "a\"b\nc");

    TAP_CHECK(strstr(err, "FIBERIZE_WORKERS=\"a\\x22b\\x0ac\"") != NULL &&
                  strchr(err, '\n') == err + strlen(err) - 1,
              "quotes and newlines in the value are escaped");
}

static void test_check_helper(void)
{
    TAP_CHECK(fz_config_check("FIBERIZE_WORKERS", "8") == NULL, "check accepts a good value");
    TAP_CHECK(fz_config_check("FIBERIZE_WORKERS", "") != NULL, "check rejects an empty value");
    TAP_CHECK(fz_config_check("FIBERIZE_NOPE", "1") != NULL, "check rejects unknown variables");
}

int main(void)
{
    test_parse_size();
    test_defaults();
    test_valid_values();
    test_hooks();
    test_dump_signal();
    test_rejected();
    test_message_escaping();
    test_check_helper();
    clear_env();
    return tap_done();
}
