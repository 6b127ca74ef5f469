/* fiberize: run an unmodified pthread program with libfiberize.so preloaded.
 *
 *   fiberize [options] [--] COMMAND [ARGS...]
 *
 * Options become FIBERIZE_* environment variables.  They are checked here
 * with the library's own parsers (preload/config.c is compiled into this
 * program), so a typo fails at once with status 2 instead of becoming a
 * warning from every process the command starts.
 *
 * Exit status as GNU env: 125 if fiberize itself fails, 126 if COMMAND was
 * found but could not be run, 127 if it was not found; otherwise COMMAND
 * replaces this process, so its status and signals reach the caller as is.
 */
#include "../preload/config.c"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZ_VERSION "0.1.0"
#define EXIT_USAGE 2
#define EXIT_FAILED 125
#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127

static const char usage_text[] =
    "Usage: fiberize [OPTION]... [--] COMMAND [ARG]...\n"
    "Run COMMAND with its threads turned into fibers on an M:N runtime\n"
    "(libfiberize.so is prepended to LD_PRELOAD).\n"
    "\n"
    "  --workers N        carrier threads, 1..1024 (FIBERIZE_WORKERS;\n"
    "                     default: the CPUs the process may use)\n"
    "  --stats            print runtime counters at exit (FIBERIZE_STATS=1)\n"
    "  --stack-size SIZE  fiber stack size, 16K..1G, e.g. 65536, 64K, 8M\n"
    "                     (FIBERIZE_STACK_SIZE; default: as native threads)\n"
    "  --pool-max N       blocking-pool threads, 1..65536 (FIBERIZE_POOL_MAX;\n"
    "                     default 512)\n"
    "  --file-io MODE     regular-file reads and writes: inline (default) or\n"
    "                     pool (FIBERIZE_FILE_IO)\n"
    "  --hooks LIST       hook families to keep: all, none, or a comma list of\n"
    "                     thread,time,io,sync,process,pool; entries written\n"
    "                     -family drop that family from all (FIBERIZE_HOOKS)\n"
    "  -h, --help         show this help and exit\n"
    "  --version          show the version and exit\n"
    "\n"
    "Options take their value as --opt N or --opt=N.  Also read from the\n"
    "environment: FIBERIZE_HANDOFF_US, FIBERIZE_DUMP_SIGNAL, FIBERIZE_DISABLE.\n"
    "\n"
    "Exit status: that of COMMAND; 2 for a usage error; 125 if fiberize\n"
    "failed; 126 if COMMAND cannot be run; 127 if COMMAND was not found.\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void vmessage(const char *fmt, va_list ap)
{
    fputs("fiberize: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fputs("Try 'fiberize --help' for more information.\n", stderr);
    exit(EXIT_USAGE);
}

static void fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    exit(status);
}

/* --help and --version: a full disk or closed stdout is still an error. */
static void print_and_exit(const char *text)
{
    fputs(text, stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        fail(EXIT_FAILED, "write error: %s", strerror(errno));
    exit(0);
}

/* ---- options ---- */

enum action { SET_VAR, SHOW_HELP, SHOW_VERSION };

static const struct cmd_option {
    const char *name;
    enum action action;
    const char *var;   /* SET_VAR: the variable to set */
    const char *fixed; /* flag options: the value to give it; NULL if the option takes one */
} cmd_options[] = {
    {"--workers", SET_VAR, "FIBERIZE_WORKERS", NULL},
    {"--stats", SET_VAR, "FIBERIZE_STATS", "1"},
    {"--stack-size", SET_VAR, "FIBERIZE_STACK_SIZE", NULL},
    {"--pool-max", SET_VAR, "FIBERIZE_POOL_MAX", NULL},
    {"--file-io", SET_VAR, "FIBERIZE_FILE_IO", NULL},
    {"--hooks", SET_VAR, "FIBERIZE_HOOKS", NULL},
    {"--help", SHOW_HELP, NULL, ""},
    {"-h", SHOW_HELP, NULL, ""},
    {"--version", SHOW_VERSION, NULL, ""},
};

/* Match "--name" or "--name=value" exactly: no abbreviations, so adding an
 * option later never changes what an existing command line means. */
static const struct cmd_option *find_option(const char *arg, const char **inline_value)
{
    size_t len = strcspn(arg, "=");

    for (size_t i = 0; i < sizeof cmd_options / sizeof cmd_options[0]; i++) {
        const struct cmd_option *o = &cmd_options[i];
        if (strlen(o->name) == len && strncmp(o->name, arg, len) == 0) {
            *inline_value = arg[len] == '=' ? arg + len + 1 : NULL;
            return o;
        }
    }
    usage_error("unrecognized option '%s'", arg);
}

static void set_variable(const struct cmd_option *o, const char *value)
{
    const char *expected = fz_config_check(o->var, value);

    if (expected != NULL)
        usage_error("invalid value '%s' for %s: expected %s", value, o->name, expected);
    if (setenv(o->var, value, 1) != 0)
        fail(EXIT_FAILED, "cannot set %s: %s", o->var, strerror(errno));
}

/* Handle argv[i]; returns the index of the last argument it consumed. */
static int handle_option(int argc, char **argv, int i)
{
    const char *value;
    const struct cmd_option *o = find_option(argv[i], &value);

    if (o->fixed != NULL && value != NULL)
        usage_error("option '%s' takes no value", o->name);
    if (o->action == SHOW_HELP)
        print_and_exit(usage_text);
    if (o->action == SHOW_VERSION)
        print_and_exit("fiberize " FZ_VERSION "\n");
    if (o->fixed != NULL) {
        value = o->fixed;
    } else if (value == NULL) {
        if (++i >= argc)
            usage_error("option '%s' requires a value", o->name);
        value = argv[i];
    }
    set_variable(o, value);
    return i;
}

/* Options stop at "--" or at the first operand, so COMMAND's own options
 * ("fiberize ls -l") are never taken for ours.  Returns COMMAND's index. */
static int parse_options(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return i + 1;
        if (argv[i][0] != '-' || argv[i][1] == '\0')
            return i;
        i = handle_option(argc, argv, i);
    }
    return argc;
}

/* ---- finding the library ---- */

static bool is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Drop the last path component in place: "/a/b/c" -> "/a/b", "/c" -> "". */
static void strip_last_component(char *path)
{
    char *slash = strrchr(path, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* Next to the binary: build/bin/fiberize -> build/libfiberize.so, or
 * PREFIX/bin/fiberize -> PREFIX/lib/fiberize/libfiberize.so when installed.
 * /proc/self/exe has symlinks resolved, so a symlinked command still works. */
static void find_library(char *lib, size_t size)
{
    static const char *const layouts[] = {"/libfiberize.so", "/lib/fiberize/libfiberize.so"};
    char prefix[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", prefix, sizeof prefix - 1);

    if (n < 0)
        fail(EXIT_FAILED, "cannot read /proc/self/exe: %s", strerror(errno));
    prefix[n] = '\0';
    strip_last_component(prefix); /* .../bin/fiberize -> .../bin */
    strip_last_component(prefix); /* .../bin -> ... */
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        if ((size_t)snprintf(lib, size, "%s%s", prefix, layouts[i]) < size && is_regular_file(lib))
            return;
    }
    fail(EXIT_FAILED, "cannot find libfiberize.so; tried %s%s and %s%s", prefix, layouts[0], prefix,
         layouts[1]);
}

/* ---- LD_PRELOAD ---- */

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp(a, b) == 0)
        return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* ld.so splits LD_PRELOAD at ':' and ' ', so those characters cannot appear
 * in our path; entries of the old value are kept in order, minus empty
 * ones and any that already name our library (it must come first, once). */
static void prepend_preload(const char *lib)
{
    const char *old = getenv("LD_PRELOAD");
    size_t cap = strlen(lib) + (old != NULL ? strlen(old) : 0) + 2;
    char *value = malloc(cap), *entry = malloc(cap);

    if (strpbrk(lib, ": ") != NULL)
        fail(EXIT_FAILED, "cannot preload '%s': LD_PRELOAD cannot hold a path with ':' or ' '",
             lib);
    if (value == NULL || entry == NULL)
        fail(EXIT_FAILED, "out of memory");
    strcpy(value, lib);
    for (const char *p = old; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, ": ");
        memcpy(entry, p, len);
        entry[len] = '\0';
        if (len > 0 && !same_file(entry, lib)) {
            strcat(value, ":");
            strcat(value, entry);
        }
        p += len + (p[len] != '\0');
    }
    if (setenv("LD_PRELOAD", value, 1) != 0)
        fail(EXIT_FAILED, "cannot set LD_PRELOAD: %s", strerror(errno));
    free(entry);
    free(value);
}

/* ---- running COMMAND ---- */

static void run_command(char **cmd)
{
    int err;

    execvp(cmd[0], cmd);
    err = errno;
    fprintf(stderr, "fiberize: '%s': %s\n", cmd[0], strerror(err));
    exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
}

int main(int argc, char **argv)
{
    char lib[PATH_MAX];
    int first = parse_options(argc, argv);

    if (first >= argc)
        usage_error("missing command");
    find_library(lib, sizeof lib);
    prepend_preload(lib);
    run_command(argv + first);
}
