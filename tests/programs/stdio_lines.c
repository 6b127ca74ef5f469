/* stdio on pipes and sockets: the contract of each stream call, which
 * fiberize now parks on (syscalls/stdio_glibc.c), printed so that a
 * native and a fiberized run can be compared line for line.
 *
 *   stdio_lines contract            every case below, one line each
 *   stdio_lines pingpong PAIRS N    PAIRS client/server thread pairs speak
 *                                   a line protocol (fdopen + fprintf +
 *                                   fflush + fgets) N rounds each over
 *                                   socketpairs; stderr gets the most OS
 *                                   threads the process had meanwhile
 *   stdio_lines wake                one reader thread in fgets, woken by a
 *                                   writer thread of the same process 50 ms
 *                                   later (on one carrier: a reader that
 *                                   blocked its carrier would need a spare)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "stdio_lines: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static uint32_t checksum(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* ---- a writer thread feeding an fd in timed pieces --------------------- */

struct feed {
    int fd;
    const char *parts[8];
    size_t lens[8];
    int gap_ms;
    bool close_after;
};

static void *feeder(void *arg)
{
    struct feed *f = arg;
    for (int i = 0; i < 8 && f->parts[i]; i++) {
        sleep_ms(f->gap_ms);
        size_t len = f->lens[i] ? f->lens[i] : strlen(f->parts[i]);
        size_t done = 0;
        while (done < len) {
            ssize_t r = write(f->fd, f->parts[i] + done, len - done);
            if (r < 0)
                die("feed write");
            done += (size_t)r;
        }
    }
    if (f->close_after)
        close(f->fd);
    return NULL;
}

static void pair(int sv[2], bool sockets)
{
    if (sockets ? socketpair(AF_UNIX, SOCK_STREAM, 0, sv) : pipe(sv))
        die("pair");
}

static void show(const char *label, const char *s)
{
    printf("%s: ", label);
    if (!s) {
        printf("NULL\n");
        return;
    }
    for (; *s; s++)
        putchar(*s == '\n' ? '|' : *s);
    putchar('\n');
}

/* Partial lines arriving in pieces, then EOF: fgets joins them, returns the
 * last unterminated line, then NULL with feof set. */
static void case_partial(bool sockets)
{
    int sv[2];
    pair(sv, sockets);
    struct feed f = {
        .fd = sv[1], .parts = {"abc", "def\ngh", "i\nlast"}, .gap_ms = 20, .close_after = true};
    pthread_t t;
    pthread_create(&t, NULL, feeder, &f);
    FILE *in = fdopen(sv[0], "r");
    char buf[64];
    for (int i = 0; i < 4; i++)
        show(sockets ? "partial socket" : "partial pipe", fgets(buf, sizeof buf, in));
    printf("  feof %d ferror %d\n", feof(in), ferror(in));
    pthread_join(t, NULL);
    fclose(in);
}

/* A line longer than every buffer: getline grows its buffer as glibc does
 * (the size it reports is compared too), then a short line. */
static void case_long_line(void)
{
    int sv[2];
    pair(sv, true);
    size_t big = 300000;
    char *line = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        line[i] = (char)('a' + i % 26);
    line[big - 1] = '\n';
    struct feed f = {.fd = sv[1],
                     .parts = {line, "short\n"},
                     .lens = {big, 0},
                     .gap_ms = 10,
                     .close_after = true};
    pthread_t t;
    pthread_create(&t, NULL, feeder, &f);
    FILE *in = fdopen(sv[0], "r");
    char *got = NULL;
    size_t cap = 0;
    ssize_t n = getline(&got, &cap, in);
    printf("long line: %zd bytes, sum %08x, cap %zu\n", n, checksum(got, (size_t)n), cap);
    n = getline(&got, &cap, in);
    printf("then: %zd bytes, cap %zu\n", n, cap);
    n = getline(&got, &cap, in);
    printf("then: %zd feof %d\n", n, feof(in));
    /* getdelim with another delimiter, through a fresh line of NULs */
    pthread_join(t, NULL);
    free(got);
    free(line);
    fclose(in);
}

/* Binary data with NULs, in pieces: fread of a whole block (read straight
 * into the caller's memory) and of small records, fgetc, ungetc. */
static void case_binary(void)
{
    int sv[2];
    pair(sv, true);
    size_t total = 200000;
    unsigned char *data = malloc(total);
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)(i * 7 % 251 == 0 ? 0 : i * 13);
    struct feed f = {.fd = sv[1],
                     .parts = {(char *)data, (char *)data + 5, (char *)data + 70000},
                     .lens = {5, 69995, total - 70000},
                     .gap_ms = 10,
                     .close_after = true};
    pthread_t t;
    pthread_create(&t, NULL, feeder, &f);
    FILE *in = fdopen(sv[0], "r");
    unsigned char *got = malloc(total + 100);
    size_t a = fread(got, 1, 3, in);
    int c = fgetc(in);
    int back = ungetc(c, in);
    int again = fgetc(in);
    got[a] = (unsigned char)again;
    printf("binary: fread 3 -> %zu, fgetc %d, ungetc %d, fgetc again %d\n", a, c, back, again);
    size_t b = fread(got + 4, 100, 1000, in);           /* 100,000 bytes: one big read */
    size_t d = fread(got + 4 + b * 100, 4, 100000, in); /* the rest, in 4-byte records */
    size_t have = 4 + b * 100 + d * 4;
    int tail = 0;
    while ((c = fgetc(in)) != EOF)
        got[have + (size_t)tail++] = (unsigned char)c;
    have += (size_t)tail;
    printf("  records %zu and %zu, tail %d, %zu bytes, sum %08x (sent %08x), feof %d ferror %d\n",
           b, d, tail, have, checksum(got, have), checksum(data, total), feof(in), ferror(in));
    pthread_join(t, NULL);
    free(got);
    free(data);
    fclose(in);
}

/* The program's own O_NONBLOCK: EAGAIN and the error flag as natively,
 * and fgets returns a partial line when EAGAIN cut it. */
static void case_nonblock(void)
{
    int sv[2];
    pair(sv, false);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    FILE *in = fdopen(sv[0], "r");
    char buf[64];
    errno = 0;
    char *r = fgets(buf, sizeof buf, in);
    printf("nonblock empty: %s errno %s ferror %d\n", r ? "line" : "NULL",
           errno == EAGAIN ? "EAGAIN" : strerror(errno), ferror(in));
    clearerr(in);
    if (write(sv[1], "part", 4) != 4)
        die("write");
    errno = 0;
    r = fgets(buf, sizeof buf, in);
    show("nonblock partial", r);
    printf("  errno %s ferror %d\n", errno == EAGAIN ? "EAGAIN" : strerror(errno), ferror(in));
    clearerr(in);
    errno = 0;
    int c = fgetc(in);
    printf("  fgetc %d errno %s ferror %d\n", c, errno == EAGAIN ? "EAGAIN" : strerror(errno),
           ferror(in));
    fclose(in);
    close(sv[1]);
    /* the flag is the program's, on a description fiberize never touched */
    pair(sv, true);
    FILE *out = fdopen(sv[1], "w");
    fputs("x", out);
    fflush(out);
    printf("  blocking peer flags %d\n", fcntl(sv[1], F_GETFL) & O_NONBLOCK);
    fclose(out);
    close(sv[0]);
}

/* SO_RCVTIMEO: the read fails with EAGAIN after the timeout. */
static void case_timeout(void)
{
    int sv[2];
    pair(sv, true);
    struct timeval tv = {0, 100000};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    FILE *in = fdopen(sv[0], "r");
    char buf[64];
    errno = 0;
    char *r = fgets(buf, sizeof buf, in);
    printf("rcvtimeo: %s errno %s ferror %d feof %d\n", r ? "line" : "NULL",
           errno == EAGAIN ? "EAGAIN" : strerror(errno), ferror(in), feof(in));
    fclose(in);
    close(sv[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* A signal handler without SA_RESTART ends the read with EINTR; with
 * SA_RESTART the read goes on and gets the line. */
static void case_signal(bool restart)
{
    int sv[2];
    pair(sv, false);
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = restart ? SA_RESTART : 0};
    sigaction(SIGALRM, &sa, NULL);
    struct feed f = {.fd = sv[1], .parts = {"after\n"}, .gap_ms = 300};
    pthread_t t;
    pthread_create(&t, NULL, feeder, &f);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    FILE *in = fdopen(sv[0], "r");
    char buf[64];
    errno = 0;
    char *r = fgets(buf, sizeof buf, in);
    int err = errno;
    show(restart ? "signal SA_RESTART" : "signal no SA_RESTART", r);
    printf("  errno %s ferror %d\n",
           err == EINTR ? "EINTR"
           : err        ? strerror(err)
                        : "0",
           ferror(in));
    pthread_join(t, NULL);
    clearerr(in);
    if (!r)
        show("  then", fgets(buf, sizeof buf, in));
    signal(SIGALRM, SIG_DFL);
    alarm(120); /* the watchdog setitimer replaced */
    fclose(in);
    close(sv[1]);
}

/* Large writes into a pipe a slow reader drains: fwrite, fputs, fprintf,
 * putc, on full, line and no buffering, and a small setvbuf buffer. */
struct drain {
    int fd;
    size_t bytes;
    uint32_t sum;
    int lines;
};

static void *drainer(void *arg)
{
    struct drain *d = arg;
    char buf[3000];
    uint32_t h = 2166136261u;
    ssize_t r;
    sleep_ms(50);
    while ((r = read(d->fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            h = (h ^ (unsigned char)buf[i]) * 16777619u;
            d->lines += buf[i] == '\n';
        }
        d->bytes += (size_t)r;
    }
    d->sum = h;
    return NULL;
}

static void case_writes(int mode, const char *name)
{
    int sv[2];
    pair(sv, false);
    struct drain d = {.fd = sv[0]};
    pthread_t t;
    pthread_create(&t, NULL, drainer, &d);
    FILE *out = fdopen(sv[1], "w");
    static char small[64];
    if (mode == _IOFBF)
        setvbuf(out, small, _IOFBF, sizeof small);
    else
        setvbuf(out, NULL, mode, 0);
    size_t big = 1 << 20;
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)(i % 97 == 0 ? '\n' : i % 97 == 1 ? 0 : 'A' + i % 23);
    size_t w = fwrite(blob, 1, big, out);
    int p = 0;
    for (int i = 0; i < 20000; i++)
        p += fprintf(out, "line %d of %s\n", i, name) > 0;
    for (int i = 0; i < 5000; i++)
        putc('a' + i % 26, out);
    int s = fputs("no newline at the end", out);
    int fl = fflush(out);
    printf("writes %s: fwrite %zu, fprintf %d, fputs %d, fflush %d, ferror %d\n", name, w, p, s, fl,
           ferror(out));
    fclose(out);
    pthread_join(t, NULL);
    printf("  reader got %zu bytes, %d lines, sum %08x\n", d.bytes, d.lines, d.sum);
    free(blob);
    close(sv[0]);
}

/* One "r+" stream on a socket, writing then reading, the peer echoing. */
static void *echoer(void *arg)
{
    FILE *f = fdopen(*(int *)arg, "r+");
    char buf[256];
    while (fgets(buf, sizeof buf, f)) {
        fputs(buf, f);
        fflush(f);
    }
    fclose(f);
    return NULL;
}

static void case_mixed(void)
{
    int sv[2];
    pair(sv, true);
    pthread_t t;
    pthread_create(&t, NULL, echoer, &sv[1]);
    FILE *f = fdopen(sv[0], "r+");
    char buf[256];
    int ok = 0;
    for (int i = 0; i < 1000; i++) {
        fprintf(f, "echo %d\n", i);
        /* reading after writing flushes first: no fflush here */
        if (fgets(buf, sizeof buf, f) && atoi(buf + 5) == i)
            ok++;
        fseek(f, 0, SEEK_CUR); /* glibc needs a positioning call before writing again */
    }
    printf("mixed r+: %d of 1000 echoed, ferror %d\n", ok, ferror(f));
    shutdown(sv[0], SHUT_WR);
    pthread_join(t, NULL);
    fclose(f);
}

/* Writing into a pipe whose reader is gone: EPIPE and the error flag. */
static void case_epipe(void)
{
    int sv[2];
    pair(sv, false);
    signal(SIGPIPE, SIG_IGN);
    close(sv[0]);
    FILE *out = fdopen(sv[1], "w");
    fputs("nobody reads this\n", out);
    errno = 0;
    int r = fflush(out);
    printf("epipe: fflush %d errno %s ferror %d\n", r, errno == EPIPE ? "EPIPE" : strerror(errno),
           ferror(out));
    fclose(out);
    signal(SIGPIPE, SIG_DFL);
}

/* fscanf with its input arriving later, and getc/getchar-style loops. */
static void case_scan(void)
{
    int sv[2];
    pair(sv, true);
    struct feed f = {
        .fd = sv[1], .parts = {"42 forty-two\n", "7 seven\n"}, .gap_ms = 30, .close_after = true};
    pthread_t t;
    pthread_create(&t, NULL, feeder, &f);
    FILE *in = fdopen(sv[0], "r");
    int n, k = 0;
    char word[32];
    while (fscanf(in, "%d %31s", &n, word) == 2)
        printf("scan %d: %d %s\n", k++, n, word);
    printf("  feof %d ferror %d\n", feof(in), ferror(in));
    pthread_join(t, NULL);
    fclose(in);
}

/* pthread_cancel of a thread waiting in fgets: it ends there (fgets is a
 * cancellation point, as read is) and the stream's lock is free after. */
static FILE *cancel_in;

static void *cancel_reader(void *arg)
{
    (void)arg;
    char buf[64];
    return fgets(buf, sizeof buf, cancel_in) ? (void *)1 : (void *)2;
}

static void case_cancel(void)
{
    int sv[2];
    pair(sv, true);
    cancel_in = fdopen(sv[0], "r");
    pthread_t t;
    void *res;
    pthread_create(&t, NULL, cancel_reader, NULL);
    sleep_ms(50);
    pthread_cancel(t);
    pthread_join(t, &res);
    int locked = ftrylockfile(cancel_in);
    if (locked == 0)
        funlockfile(cancel_in);
    printf("cancel in fgets: %s, stream lock %s\n", res == PTHREAD_CANCELED ? "cancelled" : "not",
           locked == 0 ? "free" : "still held");
    fclose(cancel_in);
    close(sv[1]);
}

/* getc_unlocked and putc_unlocked under flockfile, as tools written for
 * speed use them: inline, they call __uflow and __overflow on an empty or
 * full buffer. */
static void case_unlocked(void)
{
    int sv[2];
    pair(sv, false);
    struct drain d = {.fd = sv[0]};
    pthread_t t;
    pthread_create(&t, NULL, drainer, &d);
    FILE *out = fdopen(sv[1], "w");
    flockfile(out);
    for (int i = 0; i < 300000; i++)
        putc_unlocked(i % 61 == 0 ? '\n' : 'a' + i % 26, out);
    funlockfile(out);
    fclose(out);
    pthread_join(t, NULL);
    printf("putc_unlocked: reader got %zu bytes, %d lines, sum %08x\n", d.bytes, d.lines, d.sum);
    pair(sv, true);
    struct feed f = {
        .fd = sv[1], .parts = {"first ", "second\n", "third"}, .gap_ms = 20, .close_after = true};
    pthread_create(&t, NULL, feeder, &f);
    FILE *in = fdopen(sv[0], "r");
    char got[64];
    int n = 0, c;
    flockfile(in);
    while ((c = getc_unlocked(in)) != EOF && n < 63)
        got[n++] = (char)c;
    funlockfile(in);
    got[n] = 0;
    show("getc_unlocked", got);
    printf("  feof %d ferror %d\n", feof(in), ferror(in));
    pthread_join(t, NULL);
    fclose(in);
}

/* A prompt without a newline on a line-buffered stdout, then fgets from
 * a line-buffered input (a terminal, usually): glibc writes the prompt out
 * before it waits for the answer.  The answering thread waits until
 * stdout's buffer is empty, for a second at most. */
static void *answerer(void *arg)
{
    int waited = 0;
    while (__fpending(stdout) > 0 && waited++ < 1000)
        sleep_ms(1);
    *(int *)arg = __fpending(stdout) == 0;
    return NULL;
}

static void case_prompt(void)
{
    int sv[2], flushed = 0;
    pair(sv, false);
    FILE *in = fdopen(sv[0], "r");
    setvbuf(in, NULL, _IOLBF, 0);
    printf("prompt> ");
    pthread_t t;
    pthread_create(&t, NULL, answerer, &flushed);
    struct feed f = {.fd = sv[1], .parts = {"answer\n"}, .gap_ms = 300, .close_after = true};
    pthread_t w;
    pthread_create(&w, NULL, feeder, &f);
    char buf[64];
    char *r = fgets(buf, sizeof buf, in);
    pthread_join(t, NULL);
    pthread_join(w, NULL);
    show("", r);
    printf("  prompt shown before the wait: %s\n", flushed ? "yes" : "no");
    fclose(in);
}

/* A regular file: the same results, nothing parks. */
static void case_file(void)
{
    FILE *f = tmpfile();
    for (int i = 0; i < 1000; i++)
        fprintf(f, "row %d\n", i);
    rewind(f);
    char buf[64];
    int rows = 0;
    while (fgets(buf, sizeof buf, f))
        rows++;
    printf("file: %d rows, feof %d\n", rows, feof(f));
    fclose(f);
}

static int contract(void)
{
    case_partial(false);
    case_partial(true);
    case_long_line();
    case_binary();
    case_nonblock();
    case_timeout();
    case_signal(false);
    case_signal(true);
    case_writes(_IOFBF, "full");
    case_writes(_IOLBF, "line");
    case_writes(_IONBF, "unbuffered");
    case_mixed();
    case_epipe();
    case_scan();
    case_cancel();
    case_unlocked();
    case_prompt();
    case_file();
    return 0;
}

/* ---- the line protocol --------------------------------------------------- */

static int rounds;
static volatile int stop_sampling;
static int max_threads;

static void *server(void *arg)
{
    int fd = (int)(intptr_t)arg;
    FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
    char line[128];
    while (fgets(line, sizeof line, in)) {
        fprintf(out, "pong %d\n", atoi(line + 5) + 1);
        fflush(out);
    }
    fclose(in);
    fclose(out);
    return NULL;
}

static void *client(void *arg)
{
    int fd = (int)(intptr_t)arg;
    FILE *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w");
    char line[128];
    long sum = 0;
    for (int i = 0; i < rounds; i++) {
        fprintf(out, "ping %d\n", i);
        fflush(out);
        if (!fgets(line, sizeof line, in))
            break;
        sum += atoi(line + 5);
    }
    fclose(out);
    fclose(in);
    return (void *)sum;
}

static int os_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            n = atoi(line + 8);
    if (f)
        fclose(f);
    return n;
}

static void *sampler(void *arg)
{
    (void)arg;
    while (!stop_sampling) {
        int n = os_threads();
        if (n > max_threads)
            max_threads = n;
        sleep_ms(5);
    }
    return NULL;
}

static int pingpong(int pairs)
{
    pthread_t *c = malloc(sizeof *c * (size_t)pairs), *s = malloc(sizeof *s * (size_t)pairs), smp;
    for (int i = 0; i < pairs; i++) {
        int sv[2];
        pair(sv, true);
        pthread_create(&s[i], NULL, server, (void *)(intptr_t)sv[0]);
        pthread_create(&c[i], NULL, client, (void *)(intptr_t)sv[1]);
    }
    /* Counted once every pair talks: what fgets waiting costs.  The loop
     * above runs main for milliseconds while the first pairs already talk,
     * and on a slow VM the monitor may give that burst a spare carrier
     * (a long run, not a wait), which retires right after. */
    pthread_create(&smp, NULL, sampler, NULL);
    long total = 0;
    for (int i = 0; i < pairs; i++) {
        void *r;
        pthread_join(c[i], &r);
        total += (long)r;
        pthread_join(s[i], NULL);
    }
    stop_sampling = 1;
    pthread_join(smp, NULL);
    free(c);
    free(s);
    printf("pingpong: %d pairs x %d rounds, sum %ld\n", pairs, rounds, total);
    fprintf(stderr, "os_threads_max=%d\n", max_threads);
    return 0;
}

/* One carrier: a reader waiting in fgets, a writer in the same process. */
static void *late_writer(void *arg)
{
    sleep_ms(50);
    FILE *out = fdopen(*(int *)arg, "w");
    fputs("woken\n", out);
    fclose(out);
    return NULL;
}

static int wake(void)
{
    int sv[2];
    pair(sv, false);
    pthread_t t;
    pthread_create(&t, NULL, late_writer, &sv[1]);
    FILE *in = fdopen(sv[0], "r");
    char buf[64];
    show("wake", fgets(buf, sizeof buf, in));
    pthread_join(t, NULL);
    fclose(in);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(120);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "contract"))
        return contract();
    if (argc > 3 && !strcmp(argv[1], "pingpong")) {
        rounds = atoi(argv[3]);
        return pingpong(atoi(argv[2]));
    }
    if (argc > 1 && !strcmp(argv[1], "wake"))
        return wake();
    fprintf(stderr, "usage: stdio_lines contract | pingpong PAIRS ROUNDS | wake\n");
    return 2;
}
