/* fiberize --explore K: run COMMAND under seeds 1..K and stop at the first
 * schedule that changes what it does.
 *
 * A race shows as a run whose exit status or standard output differs from
 * the others'.  Each run is deterministic (runtime/det.c), so the seed that
 * differs is a recipe: `fiberize --seed N --steps S COMMAND` runs that
 * schedule again, every time.
 *
 *  1. A sizing run (seed 1) counts COMMAND's scheduling points: PCT places
 *     its priority changes among that many steps (S), so every later run
 *     gets FIBERIZE_SEED_STEPS=S, unless --steps gave it.
 *  2. Seed 1 with S is the reference; seeds 2..K run beside each other,
 *     as many at once as the CPUs this process may use.  Each gets the
 *     same standard input (read once into memory if it is not a
 *     terminal), and its own copies of stdout and stderr.
 *  3. A run that differs from the reference (status, stdout), or that runs
 *     longer than the limit (20 times the reference, at least 60 s), ends
 *     the search: the runs still going are waited for, and the smallest
 *     seed that differed is reported with its output.
 * Exit status: 0 if all K runs agreed, 1 if one differed, 125 on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "explore.h"

#define EXIT_DIFFERS 1
#define EXIT_FAILED 125
/* A run that takes this many times the reference's time is taken for
 * hung (a deadlock the runtime cannot see, a spin without any call)... */
#define SLOW_FACTOR 20
/* ...but never sooner than this: a first run can be quick by luck. */
#define MIN_LIMIT_NS (60ull * 1000000000ull)
/* Output of a differing run shown to the user. */
#define SHOW_BYTES 4000

struct run {
    unsigned long long seed;
    pid_t pid;
    int out, err; /* memfds holding its stdout and stderr */
    int status;
    uint64_t started_ns;
    bool timed_out;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "fiberize: explore: %s: %s\n", what, strerror(errno));
    exit(EXIT_FAILED);
}

/* Standard input, the same for every run: a memfd each run opens afresh
 * (its own offset), or /dev/null for a terminal. */
static int input_fd = -1;

static void capture_input(void)
{
    if (isatty(0))
        return;
    input_fd = memfd_create("fiberize-explore-stdin", MFD_CLOEXEC);
    if (input_fd < 0)
        die("memfd_create");
    char buf[65536];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EBADF) /* no stdin at all */
                break;
            die("reading standard input");
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(input_fd, buf + done, (size_t)(n - done));
            if (w < 0)
                die("keeping standard input");
            done += w;
        }
    }
}

static void child_stdin(void)
{
    int fd;
    if (input_fd >= 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", input_fd);
        fd = open(path, O_RDONLY);
    } else {
        fd = open("/dev/null", O_RDONLY);
    }
    if (fd < 0 || dup2(fd, 0) < 0)
        _exit(EXIT_FAILED);
    if (fd != 0)
        close(fd);
}

static void set_number(const char *var, unsigned long long v)
{
    char s[32];
    snprintf(s, sizeof s, "%llu", v);
    setenv(var, s, 1);
}

static void start(struct run *r, char **cmd, unsigned long long steps, const char *report)
{
    r->out = memfd_create("fiberize-explore-out", MFD_CLOEXEC);
    r->err = memfd_create("fiberize-explore-err", MFD_CLOEXEC);
    if (r->out < 0 || r->err < 0)
        die("memfd_create");
    r->timed_out = false;
    r->started_ns = now_ns();
    r->pid = fork();
    if (r->pid < 0)
        die("fork");
    if (r->pid == 0) {
        child_stdin();
        if (dup2(r->out, 1) < 0 || dup2(r->err, 2) < 0)
            _exit(EXIT_FAILED);
        set_number("FIBERIZE_SEED", r->seed);
        if (steps)
            set_number("FIBERIZE_SEED_STEPS", steps);
        if (report)
            setenv("FIBERIZE_SEED_REPORT", report, 1);
        else
            unsetenv("FIBERIZE_SEED_REPORT");
        setpgid(0, 0); /* a hung run is killed with everything it started */
        execvp(cmd[0], cmd);
        _exit(errno == ENOENT ? 127 : 126);
    }
    setpgid(r->pid, r->pid);
}

/* The contents of a memfd. */
static char *contents(int fd, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("fstat");
    *len = (size_t)st.st_size;
    char *p = malloc(*len + 1);
    if (!p)
        die("malloc");
    size_t got = 0;
    while (got < *len) {
        ssize_t n = pread(fd, p + got, *len - got, (off_t)got);
        if (n <= 0)
            die("reading a run's output");
        got += (size_t)n;
    }
    p[*len] = 0;
    return p;
}

static void describe_status(int status, bool timed_out, char *buf, size_t len)
{
    if (timed_out)
        snprintf(buf, len, "still running at the time limit (killed)");
    else if (WIFEXITED(status))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "wait status %#x", status);
}

/* Wait for one of the runs in `live`; returns its index. */
static int reap(struct run *live, int n, uint64_t limit_ns)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno != EINTR)
            die("waitpid");
        for (int i = 0; pid > 0 && i < n; i++)
            if (live[i].pid == pid) {
                live[i].status = status;
                return i;
            }
        if (pid > 0)
            continue; /* not one of ours */
        uint64_t now = now_ns();
        for (int i = 0; limit_ns && i < n; i++)
            if (!live[i].timed_out && now - live[i].started_ns > limit_ns) {
                live[i].timed_out = true;
                kill(-live[i].pid, SIGKILL);
            }
        struct timespec nap = {0, 2000000}; /* a run takes milliseconds at least */
        nanosleep(&nap, NULL);
    }
}

static void finish(struct run *r)
{
    close(r->out);
    close(r->err);
}

static bool same(struct run *r, int ref_status, const char *ref_out, size_t ref_len)
{
    if (r->timed_out || r->status != ref_status)
        return false;
    size_t len;
    char *out = contents(r->out, &len);
    bool eq = len == ref_len && memcmp(out, ref_out, len) == 0;
    free(out);
    return eq;
}

static void show(const char *what, int fd)
{
    size_t len;
    char *p = contents(fd, &len);
    if (len) {
        fprintf(stderr, "--- %s%s ---\n", what, len > SHOW_BYTES ? " (the end)" : "");
        fwrite(len > SHOW_BYTES ? p + len - SHOW_BYTES : p, 1, len > SHOW_BYTES ? SHOW_BYTES : len,
               stderr);
        if (p[len - 1] != '\n')
            fputc('\n', stderr);
    }
    free(p);
}

static void print_command(const char *label, char **cmd, unsigned long long seed,
                          unsigned long long steps, unsigned depth)
{
    fprintf(stderr, "  %s: fiberize --seed %llu --steps %llu", label, seed, steps);
    if (depth)
        fprintf(stderr, " --depth %u", depth);
    fputs(" --", stderr);
    for (char **a = cmd; *a; a++)
        fprintf(stderr, " %s", *a);
    fputc('\n', stderr);
}

static unsigned parallel_runs(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* The steps the sizing run counted, from its report ("seed=1 steps=S ..."). */
static unsigned long long read_steps(const char *report)
{
    FILE *f = fopen(report, "r");
    unsigned long long seed, steps = 0;
    if (f) {
        if (fscanf(f, "seed=%llu steps=%llu", &seed, &steps) != 2)
            steps = 0;
        fclose(f);
    }
    return steps;
}

int fz_explore(unsigned long long k, char **cmd, unsigned long long steps, unsigned depth)
{
    signal(SIGPIPE, SIG_IGN);
    capture_input();
    char report[] = "/tmp/fiberize-explore-XXXXXX";
    int rfd = mkstemp(report);
    if (rfd < 0)
        die("mkstemp");
    close(rfd);

    /* 1. sizing */
    struct run sizing = {.seed = 1};
    if (!steps) {
        start(&sizing, cmd, 0, report);
        reap(&sizing, 1, 0);
        finish(&sizing);
        steps = read_steps(report);
        if (!steps) {
            unlink(report);
            fprintf(stderr,
                    "fiberize: explore: the first run of '%s' reported no schedule "
                    "(it did not run under fiberize?)\n",
                    cmd[0]);
            return EXIT_FAILED;
        }
    }
    unlink(report);

    /* 2. the reference */
    struct run ref = {.seed = 1};
    uint64_t t0 = now_ns();
    start(&ref, cmd, steps, NULL);
    reap(&ref, 1, 0);
    uint64_t ref_ns = now_ns() - t0;
    uint64_t limit = ref_ns * SLOW_FACTOR > MIN_LIMIT_NS ? ref_ns * SLOW_FACTOR : MIN_LIMIT_NS;
    size_t ref_len;
    char *ref_out = contents(ref.out, &ref_len);
    char ref_desc[128];
    describe_status(ref.status, false, ref_desc, sizeof ref_desc);

    /* 3. the others, side by side */
    unsigned width = parallel_runs();
    struct run *live = calloc(width, sizeof *live);
    if (!live)
        die("calloc");
    int n = 0;
    unsigned long long next = 2, done = 1, found = 0;
    struct run bad = {0};
    while (n > 0 || (!found && next <= k)) {
        while (!found && next <= k && n < (int)width) {
            live[n].seed = next++;
            start(&live[n], cmd, steps, NULL);
            n++;
        }
        int i = reap(live, n, limit);
        struct run r = live[i];
        live[i] = live[--n];
        done++;
        if (!same(&r, ref.status, ref_out, ref_len) && (!found || r.seed < found)) {
            if (found)
                finish(&bad);
            found = r.seed;
            bad = r;
            continue;
        }
        finish(&r);
    }
    free(live);
    if (!found) {
        fprintf(stderr,
                "fiberize: explore: %llu schedules of '%s', all alike (%s, %zu bytes of output; "
                "%llu scheduling points per run)\n",
                done, cmd[0], ref_desc, ref_len, steps);
        finish(&ref);
        free(ref_out);
        return 0;
    }
    char desc[128];
    describe_status(bad.status, bad.timed_out, desc, sizeof desc);
    size_t bad_len;
    char *bad_out = contents(bad.out, &bad_len);
    fprintf(
        stderr,
        "fiberize: explore: seed %llu differs from seed 1 after %llu runs: %s%s (seed 1: %s%s)\n",
        found, done, desc,
        bad_len == ref_len && !memcmp(bad_out, ref_out, ref_len) ? "" : ", other output", ref_desc,
        "");
    free(bad_out);
    print_command("reproduce", cmd, found, steps, depth);
    print_command("seed 1 was", cmd, 1, steps, depth);
    char what[64];
    snprintf(what, sizeof what, "seed %llu's standard output", found);
    show(what, bad.out);
    snprintf(what, sizeof what, "seed %llu's standard error", found);
    show(what, bad.err);
    show("seed 1's standard output", ref.out);
    show("seed 1's standard error", ref.err);
    finish(&bad);
    finish(&ref);
    free(ref_out);
    return EXIT_DIFFERS;
}
