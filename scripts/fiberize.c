/* fiberize: run an unmodified pthread program with libfiberize.so preloaded
 * (libfiberize-musl.so for a program built against musl).
 *
 *   fiberize [options] [--] COMMAND [ARGS...]
 *
 * Options become FIBERIZE_* environment variables.  They are checked here
 * with the library's own parsers (preload/config.c is compiled into this
 * program), so a typo fails at once with status 2 instead of becoming a
 * warning from every process the command starts.
 *
 *   fiberize dump PID
 *   fiberize stats PID [--watch SECS [--count N]] [--json]
 *
 * talk to a running program started with --control (FIBERIZE_CONTROL=1)
 * over its control socket (preload/control.c).
 *
 * Exit status as GNU env: 125 if fiberize itself fails, 126 if COMMAND was
 * found but could not be run, 127 if it was not found; otherwise COMMAND
 * replaces this process, so its status and signals reach the caller as is.
 */
#include "../preload/config.c"
#include "../runtime/statsview.c"
#include "explore.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FZ_VERSION "0.1.0"
#define EXIT_USAGE 2
#define EXIT_FAILED 125
#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127

static const char usage_text[] =
    "Usage: fiberize [OPTION]... [--] COMMAND [ARG]...\n"
    "  or:  fiberize dump PID\n"
    "  or:  fiberize stats PID [--watch SECS [--count N]] [--json]\n"
    "Run COMMAND with its threads turned into fibers on an M:N runtime\n"
    "(libfiberize.so, or libfiberize-musl.so for a musl program, is prepended\n"
    "to LD_PRELOAD).\n"
    "\n"
    "  --workers N        carrier threads, 1..1024 (FIBERIZE_WORKERS;\n"
    "                     default: the CPUs the process may use)\n"
    "  --stats            print runtime counters at exit (FIBERIZE_STATS=1)\n"
    "  --control          open the control socket `fiberize dump PID` and\n"
    "                     `fiberize stats PID` use (FIBERIZE_CONTROL=1)\n"
    "  --stack-size SIZE  fiber stack size, 16K..1G, e.g. 65536, 64K, 8M\n"
    "                     (FIBERIZE_STACK_SIZE; default: as native threads)\n"
    "  --pool-max N       blocking-pool threads, 1..65536 (FIBERIZE_POOL_MAX;\n"
    "                     default 512)\n"
    "  --file-io MODE     regular-file reads and writes: inline (default) or\n"
    "                     pool (FIBERIZE_FILE_IO)\n"
    "  --hooks LIST       hook families to keep: all, none, or a comma list of\n"
    "                     thread,time,io,sync,process,pool; entries written\n"
    "                     -family drop that family from all (FIBERIZE_HOOKS)\n"
    "  --seed N           deterministic schedule N: one carrier, every switch\n"
    "                     chosen from N, virtual time (FIBERIZE_SEED)\n"
    "  --explore K        run COMMAND under seeds 1..K, stop at the first\n"
    "                     whose exit status or output differs from seed 1's,\n"
    "                     and print the command that replays it\n"
    "  --depth D          priority-change points + 1 per schedule, 1..16\n"
    "                     (FIBERIZE_SEED_DEPTH; default 3)\n"
    "  --steps S          scheduling points a run is expected to have\n"
    "                     (FIBERIZE_SEED_STEPS; --explore counts them)\n"
    "  --quiet            no line saying why a program runs natively (one\n"
    "                     linked statically or for another CPU, or built\n"
    "                     with musl when libfiberize-musl.so is missing)\n"
    "  -h, --help         show this help and exit\n"
    "  --version          show the version and exit\n"
    "\n"
    "Options take their value as --opt N or --opt=N.  Also read from the\n"
    "environment: FIBERIZE_HANDOFF_US, FIBERIZE_DUMP_SIGNAL (a signal that makes\n"
    "the program write a fiber dump), FIBERIZE_DUMP_FILE, FIBERIZE_DISABLE,\n"
    "FIBERIZE_SEED_REPORT (a file a --seed run writes its fingerprint to).\n"
    "\n"
    "fiberize dump PID prints every fiber of a running program started with\n"
    "--control: state, wait, backtrace.  fiberize stats PID prints its runtime\n"
    "figures; --watch SECS repeats with rates per second (--count N times),\n"
    "--json prints JSON.  Run a program named dump or stats with '--'.\n"
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

enum action { SET_VAR, SHOW_HELP, SHOW_VERSION, BE_QUIET, EXPLORE };

/* --explore K: how many seeds (0: not exploring). */
static unsigned long long explore_runs;

/* --quiet: no notices from this command (why a program runs natively). */
static bool quiet;

static const struct cmd_option {
    const char *name;
    enum action action;
    const char *var;   /* SET_VAR: the variable to set */
    const char *fixed; /* flag options: the value to give it; NULL if the option takes one */
} cmd_options[] = {
    {"--workers", SET_VAR, "FIBERIZE_WORKERS", NULL},
    {"--stats", SET_VAR, "FIBERIZE_STATS", "1"},
    {"--control", SET_VAR, "FIBERIZE_CONTROL", "1"},
    {"--stack-size", SET_VAR, "FIBERIZE_STACK_SIZE", NULL},
    {"--pool-max", SET_VAR, "FIBERIZE_POOL_MAX", NULL},
    {"--file-io", SET_VAR, "FIBERIZE_FILE_IO", NULL},
    {"--hooks", SET_VAR, "FIBERIZE_HOOKS", NULL},
    {"--seed", SET_VAR, "FIBERIZE_SEED", NULL},
    {"--depth", SET_VAR, "FIBERIZE_SEED_DEPTH", NULL},
    {"--steps", SET_VAR, "FIBERIZE_SEED_STEPS", NULL},
    {"--explore", EXPLORE, NULL, NULL},
    {"--quiet", BE_QUIET, NULL, ""},
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
    if (o->action == BE_QUIET) {
        quiet = true;
        return i;
    }
    if (o->fixed != NULL) {
        value = o->fixed;
    } else if (value == NULL) {
        if (++i >= argc)
            usage_error("option '%s' requires a value", o->name);
        value = argv[i];
    }
    if (o->action == EXPLORE) {
        char *end;
        errno = 0;
        explore_runs = strtoull(value, &end, 10);
        if (errno || *end || value[0] < '1' || value[0] > '9' || explore_runs > 100000000)
            usage_error("invalid value '%s' for --explore: expected an integer from 1 to 100000000",
                        value);
        return i;
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

/* The two libraries: for glibc programs, and for musl ones (built when
 * musl-gcc is installed). */
#define GLIBC_LIBRARY "libfiberize.so"
#define MUSL_LIBRARY "libfiberize-musl.so"

/* Next to the binary: build/bin/fiberize -> build/NAME, or
 * PREFIX/bin/fiberize -> PREFIX/lib/fiberize/NAME when installed.
 * /proc/self/exe has symlinks resolved, so a symlinked command still works.
 * False if neither exists; lib then holds the first place tried. */
static bool locate_library(const char *name, char *lib, size_t size)
{
    static const char *const layouts[] = {"/", "/lib/fiberize/"};
    char prefix[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", prefix, sizeof prefix - 1);

    if (n < 0)
        fail(EXIT_FAILED, "cannot read /proc/self/exe: %s", strerror(errno));
    prefix[n] = '\0';
    strip_last_component(prefix); /* .../bin/fiberize -> .../bin */
    strip_last_component(prefix); /* .../bin -> ... */
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        int len = snprintf(lib, size, "%s%s%s", prefix, layouts[i], name);
        if (len > 0 && (size_t)len < size && is_regular_file(lib))
            return true;
    }
    if (snprintf(lib, size, "%s%s%s", prefix, layouts[0], name) < 0)
        lib[0] = '\0';
    return false;
}

/* The glibc library: without it the command is broken, not the program. */
static void find_library(char *lib, size_t size)
{
    if (!locate_library(GLIBC_LIBRARY, lib, size))
        fail(EXIT_FAILED, "cannot find " GLIBC_LIBRARY "; tried %s and lib/fiberize/ beside it",
             lib);
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

/* ---- which libc COMMAND runs on ---- */

/* A glibc program gets libfiberize.so, a musl one libfiberize-musl.so
 * (each libc's loader can load only its own: musl's fails to start a
 * program whose LD_PRELOAD names a glibc library, status 127).  A static
 * program has no loader to load either, and a 32-bit or foreign program
 * cannot map them; a musl program runs natively too when the musl library
 * was not built.  Those run natively, with one line saying why.  COMMAND is
 * read as execvp will find it; a file that cannot be read or is neither
 * ELF nor a #! script is left to execvp, which reports it as it would
 * without fiberize. */
enum program_kind {
    PROGRAM_GLIBC,
    PROGRAM_MUSL,
    PROGRAM_STATIC,
    PROGRAM_FOREIGN,
    PROGRAM_MIXED, /* a script whose env is one libc's and whose program the other's */
    PROGRAM_UNKNOWN
};

/* #! chains longer than this are left to execve (the kernel allows 4). */
#define MAX_SCRIPT_DEPTH 4

static bool is_executable_file(const char *path)
{
    return is_regular_file(path) && access(path, X_OK) == 0;
}

/* Where execvp finds NAME: NAME itself when it has a slash, else the first
 * executable file of that name in $PATH (its default when unset). */
static bool find_program(const char *name, char *out, size_t size)
{
    if (strchr(name, '/'))
        return (size_t)snprintf(out, size, "%s", name) < size;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/bin:/usr/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        int n = len ? snprintf(out, size, "%.*s/%s", (int)len, path, name)
                    : snprintf(out, size, "./%s", name); /* an empty entry: here */
        if (n > 0 && (size_t)n < size && is_executable_file(out))
            return true;
        path += len + (path[len] == ':');
    }
    return false;
}

static enum program_kind kind_of_program(const char *name, int depth);

/* "/a/b/c" -> "c" */
static const char *file_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "#!INTERP [ARG]": the interpreter decides; "#!/usr/bin/env NAME" runs
 * NAME as found on $PATH. */
static enum program_kind kind_of_script(const char *line, int depth)
{
    char interp[PATH_MAX], arg[PATH_MAX];
    int fields = sscanf(line + 2, " %4095s %4095s", interp, arg);
    if (fields < 1)
        return PROGRAM_UNKNOWN;
    if (fields == 2 && strcmp(file_name(interp), "env") == 0 && arg[0] != '-') {
        /* env runs first, with the same LD_PRELOAD: the library must suit
         * both (each libc's loader refuses the other's library) */
        enum program_kind via = kind_of_program(interp, depth + 1);
        enum program_kind target = kind_of_program(arg, depth + 1);
        if ((via == PROGRAM_GLIBC && target == PROGRAM_MUSL) ||
            (via == PROGRAM_MUSL && target == PROGRAM_GLIBC))
            return PROGRAM_MIXED;
        return target;
    }
    return kind_of_program(interp, depth + 1);
}

/* The kind of a program whose file name is BASE, read from fd. */
static enum program_kind kind_of_elf(int fd, const Elf64_Ehdr *eh, const char *base)
{
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
        return PROGRAM_FOREIGN;
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return PROGRAM_UNKNOWN;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh->e_phoff + i * sizeof ph)) != sizeof ph)
            return PROGRAM_UNKNOWN;
        if (ph.p_type != PT_INTERP)
            continue;
        char interp[PATH_MAX] = "";
        size_t len = ph.p_filesz < sizeof interp - 1 ? ph.p_filesz : sizeof interp - 1;
        if (pread(fd, interp, len, (off_t)ph.p_offset) != (ssize_t)len)
            return PROGRAM_UNKNOWN;
        interp[len] = '\0';
        return strncmp(file_name(interp), "ld-musl", 7) == 0 ? PROGRAM_MUSL : PROGRAM_GLIBC;
    }
    /* No interpreter: a static program -- or a dynamic loader run as a
     * command ("ld-linux-x86-64.so.2 [--library-path DIR] PROGRAM", as
     * ../shared/glibc/run-with does), which loads LD_PRELOAD itself. */
    if (strncmp(base, "ld-linux", 8) == 0)
        return PROGRAM_GLIBC;
    if (strncmp(base, "ld-musl", 7) == 0)
        return PROGRAM_MUSL;
    return PROGRAM_STATIC;
}

static enum program_kind kind_of_program(const char *name, int depth)
{
    char path[PATH_MAX];
    if (depth > MAX_SCRIPT_DEPTH || !find_program(name, path, sizeof path))
        return PROGRAM_UNKNOWN;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PROGRAM_UNKNOWN;
    union {
        Elf64_Ehdr eh;
        char line[PATH_MAX];
    } head;
    memset(&head, 0, sizeof head);
    ssize_t n = pread(fd, &head, sizeof head - 1, 0);
    enum program_kind kind = PROGRAM_UNKNOWN;
    if (n >= (ssize_t)sizeof head.eh && memcmp(head.eh.e_ident, ELFMAG, SELFMAG) == 0)
        kind = kind_of_elf(fd, &head.eh, file_name(path));
    else if (n > 2 && head.line[0] == '#' && head.line[1] == '!') {
        head.line[strcspn(head.line, "\n")] = '\0';
        kind = kind_of_script(head.line, depth);
    }
    close(fd);
    return kind;
}

static void notice(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

/* The entry both libcs' loaders read as their own library (make's
 * by-libc/ links beside libfiberize-musl.so): glibc's ld.so expands $LIB
 * to its library directory's name, where libfiberize.so is linked; musl's
 * loader takes "$LIB" as written, a directory where libfiberize-musl.so is
 * linked.  False if the links are not there. */
static bool locate_either_library(char *lib, size_t size)
{
    char musl_lib[PATH_MAX];
    if (!locate_library(MUSL_LIBRARY, musl_lib, sizeof musl_lib))
        return false;
    strip_last_component(musl_lib);
    int n = snprintf(lib, size, "%s/by-libc/$LIB/" GLIBC_LIBRARY, musl_lib);
    return n > 0 && (size_t)n < size && is_regular_file(lib);
}

/* Preload the library for COMMAND's libc (lib is the glibc one), or say
 * why it runs natively.  A musl program gets the entry either libc reads
 * as its own when it exists, so the glibc programs it runs (/bin/sh for
 * system and popen) are fiberized too instead of failing to start. */
static void choose_library(const char *command, const char *lib)
{
    char musl_lib[PATH_MAX];
    switch (kind_of_program(command, 0)) {
    case PROGRAM_MUSL:
        if (locate_either_library(musl_lib, sizeof musl_lib)) {
            prepend_preload(musl_lib);
            return;
        }
        if (!locate_library(MUSL_LIBRARY, musl_lib, sizeof musl_lib)) {
            notice("'%s' runs on musl libc and %s is missing (make builds it when musl-gcc is "
                   "installed): running it natively",
                   command, musl_lib);
            return;
        }
        prepend_preload(musl_lib);
        return;
    case PROGRAM_STATIC:
        notice("'%s' is statically linked: nothing can be preloaded into it: running it natively",
               command);
        return;
    case PROGRAM_FOREIGN:
        notice("'%s' is not an x86-64 program: running it natively", command);
        return;
    case PROGRAM_MIXED:
        if (locate_either_library(musl_lib, sizeof musl_lib)) {
            prepend_preload(musl_lib);
            return;
        }
        notice("'%s' starts a program of one libc through env of the other (glibc and musl): "
               "no one library can be preloaded into both: running it natively",
               command);
        return;
    case PROGRAM_GLIBC:
    case PROGRAM_UNKNOWN:
        prepend_preload(lib);
        return;
    }
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

/* ---- talking to a running program ---- */

static bool is_number(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* XDG_RUNTIME_DIR in pid's initial environment, if we may read it. */
static bool target_runtime_dir(long pid, char *out, size_t len)
{
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strncmp(buf + i, "XDG_RUNTIME_DIR=", 16) == 0 && strlen(buf + i + 16) < len) {
            strcpy(out, buf + i + 16);
            return true;
        }
    return false;
}

/* The program's control socket, connected; exits with a message if none. */
static int connect_control(long pid)
{
    char dirs[3][PATH_MAX];
    int ndirs = 0;
    struct stat st;
    const char *mine = getenv("XDG_RUNTIME_DIR");
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/%ld", pid);
    if (stat(proc, &st) != 0)
        fail(1, "no process %ld", pid);
    if (target_runtime_dir(pid, dirs[ndirs], sizeof dirs[0]))
        ndirs++;
    if (mine && strlen(mine) < sizeof dirs[0])
        strcpy(dirs[ndirs++], mine);
    snprintf(dirs[ndirs++], sizeof dirs[0], "/tmp/fiberize-%d", (int)st.st_uid);
    int last_err = ENOENT;
    for (int i = 0; i < ndirs; i++) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if ((size_t)snprintf(a.sun_path, sizeof a.sun_path, "%s/fiberize-%ld.sock", dirs[i], pid) >=
            sizeof a.sun_path)
            continue;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            fail(1, "socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        if (errno != ENOENT || last_err == ENOENT)
            last_err = errno;
        close(fd);
    }
    if (last_err == EACCES || last_err == EPERM)
        fail(1, "process %ld: its control socket is not yours (%s)", pid, strerror(last_err));
    fail(1,
         "process %ld has no control socket (start it with fiberize --control or "
         "FIBERIZE_CONTROL=1): %s",
         pid, strerror(last_err));
}

/* Send a request, read the whole answer (NUL-terminated, malloc'd). */
static char *ask(long pid, const char *request, size_t *len)
{
    int fd = connect_control(pid);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        fail(1, "out of memory");
    /* a refusal may close the socket before the request is read */
    signal(SIGPIPE, SIG_IGN);
    (void)!write(fd, request, strlen(request));
    for (;;) {
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                fail(1, "out of memory");
            buf = bigger;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (strncmp(buf, "fiberize: ", 10) == 0) { /* refused, or not understood */
        fputs(buf, stderr);
        exit(1);
    }
    *len = n;
    return buf;
}

static int cmd_dump(long pid)
{
    size_t n;
    char *text = ask(pid, "dump\n", &n);
    fwrite(text, 1, n, stdout);
    free(text);
    if (fflush(stdout) != 0)
        fail(1, "write error: %s", strerror(errno));
    return n > 0 ? 0 : 1;
}

static bool fetch_view(long pid, struct fz_view *v)
{
    size_t n;
    char *json = ask(pid, "stats\n", &n);
    bool ok = fz_view_parse(json, v);
    free(json);
    return ok;
}

/* One "name":rate member of the per_second object, comma-separated. */
static void print_rate(const char *name, double rate, bool *first)
{
    printf("%s\"%s\":%.1f", *first ? "" : ",", name, rate);
    *first = false;
}

static void print_json(const struct fz_view *v, const struct fz_view *prev)
{
    static char buf[256 + FZ_VIEW_MAX_CARRIERS * 128 + FZ_V_COUNT * 48];
    size_t n = fz_view_json(v, buf, sizeof buf);
    if (!prev) {
        fwrite(buf, 1, n, stdout);
        return;
    }
    double dt = (double)(v->uptime_ns - prev->uptime_ns) / 1e9;
    buf[n - 2] = '\0'; /* drop "}\n": the rates go in the same object */
    printf("%s,\"interval_s\":%.3f,\"per_second\":{", buf, dt);
    bool first = true;
#define FZ_RATE(name, kind, words)                                                                 \
    if (#kind[0] == 'C' && dt > 0)                                                                 \
        print_rate(#name, (double)(v->v[FZ_V_##name] - prev->v[FZ_V_##name]) / dt, &first);
    FZ_VIEW_FIELDS(FZ_RATE)
#undef FZ_RATE
    printf("}}\n");
}

static int cmd_stats(long pid, int argc, char **argv)
{
    double watch = 0;
    long count = 0;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            char *end;
            watch = strtod(argv[++i], &end);
            if (*end || watch <= 0 || watch > 86400)
                usage_error("--watch wants a number of seconds, not '%s'", argv[i]);
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc && is_number(argv[i + 1])) {
            count = atol(argv[++i]);
        } else {
            usage_error("stats: unrecognized argument '%s'", argv[i]);
        }
    }
    static struct fz_view views[2];
    static char table[1 << 18];
    struct fz_view *prev = NULL, *cur = &views[0];
    if (!fetch_view(pid, cur))
        fail(1, "process %ld: unreadable answer", pid);
    for (long round = 1;; round++) {
        if (json) {
            print_json(cur, prev);
        } else {
            if (prev)
                putchar('\n');
            fz_view_table(cur, prev, table, sizeof table);
            fputs(table, stdout);
        }
        if (fflush(stdout) != 0)
            fail(1, "write error: %s", strerror(errno));
        if (!watch || (count && round >= count))
            return 0;
        struct timespec ts = {(time_t)watch, (long)((watch - (double)(time_t)watch) * 1e9)};
        nanosleep(&ts, NULL);
        prev = cur;
        cur = cur == &views[0] ? &views[1] : &views[0];
        if (!fetch_view(pid, cur))
            fail(1, "process %ld: unreadable answer", pid);
    }
}

int main(int argc, char **argv)
{
    char lib[PATH_MAX];
    /* "fiberize dump 1234": a PID after the word; "fiberize -- dump" runs
     * a program of that name */
    if (argc >= 3 && is_number(argv[2]) && strcmp(argv[1], "dump") == 0) {
        if (argc > 3)
            usage_error("dump: unexpected argument '%s'", argv[3]);
        return cmd_dump(atol(argv[2]));
    }
    if (argc >= 3 && is_number(argv[2]) && strcmp(argv[1], "stats") == 0)
        return cmd_stats(atol(argv[2]), argc - 3, argv + 3);
    int first = parse_options(argc, argv);

    if (first >= argc)
        usage_error("missing command");
    find_library(lib, sizeof lib);
    if (explore_runs) {
        if (getenv("FIBERIZE_SEED") && *getenv("FIBERIZE_SEED"))
            usage_error("--explore chooses the seeds itself: drop --seed (and FIBERIZE_SEED)");
        enum program_kind kind = kind_of_program(argv[first], 0);
        if (kind == PROGRAM_MUSL && !locate_library(MUSL_LIBRARY, lib, sizeof lib))
            kind = PROGRAM_STATIC; /* as unrunnable here */
        if (kind != PROGRAM_GLIBC && kind != PROGRAM_MUSL && kind != PROGRAM_UNKNOWN)
            fail(EXIT_FAILED, "'%s' cannot run under fiberize here, so it cannot be explored",
                 argv[first]);
        prepend_preload(lib);
        const char *steps = getenv("FIBERIZE_SEED_STEPS"), *depth = getenv("FIBERIZE_SEED_DEPTH");
        return fz_explore(explore_runs, argv + first,
                          steps && *steps ? strtoull(steps, NULL, 10) : 0,
                          depth && *depth ? (unsigned)strtoul(depth, NULL, 10) : 0);
    }
    choose_library(argv[first], lib);
    run_command(argv + first);
}
