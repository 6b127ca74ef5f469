/* Opening FIFOs: open of a FIFO blocks until the other end is opened.
 *
 * Both ends are opened by threads of this one process, so under fiberize
 * the first opener must not hold up the thread that will open the other
 * end (fiberize makes such an open in its blocking pool).  Checked: a
 * reader opening first returns only after the writer began its open, and
 * the reverse; 20 FIFOs at once; data passes; the non-blocking forms
 * (O_RDONLY|O_NONBLOCK succeeds, O_WRONLY|O_NONBLOCK without a reader is
 * ENXIO, O_RDWR never waits); a signal handler without SA_RESTART ends a
 * blocked open with EINTR, one with SA_RESTART does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PAIRS 20
#define MESSAGE_BYTES 100000

static int failures;
static char dir[64];

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void fifo_path(char *out, size_t n, int id)
{
    snprintf(out, n, "%s/fifo%d", dir, id);
}

static void make_fifo(int id)
{
    char path[128];
    fifo_path(path, sizeof path, id);
    if (mkfifo(path, 0600) != 0) {
        perror("mkfifo");
        exit(2);
    }
}

/* ---- one pair: an end opened first, the other after a pause ----------- */

struct end {
    int id;
    int writer;      /* else reader */
    int delay_ms;    /* before opening */
    int use_openat;  /* openat(dirfd, name) instead of open(path) */
    long long began; /* when its open was called */
    long long opened;
    long bytes;   /* written or read */
    int checksum; /* of the bytes read */
    int ok;
};

static void *end_thread(void *arg)
{
    struct end *e = arg;
    char path[128], name[32];
    fifo_path(path, sizeof path, e->id);
    snprintf(name, sizeof name, "fifo%d", e->id);
    if (e->delay_ms)
        usleep(e->delay_ms * 1000);
    int flags = (e->writer ? O_WRONLY : O_RDONLY) | O_CLOEXEC;
    e->began = now_ns();
    int fd;
    if (e->use_openat) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        fd = openat(dfd, name, flags);
        close(dfd);
    } else {
        fd = open(path, flags);
    }
    e->opened = now_ns();
    if (fd < 0)
        return NULL;
    char local[8192];
    if (e->writer) {
        for (long sent = 0; sent < MESSAGE_BYTES;) {
            long chunk = MESSAGE_BYTES - sent < 8192 ? MESSAGE_BYTES - sent : 8192;
            for (long i = 0; i < chunk; i++)
                local[i] = (char)((sent + i) * 7 + e->id);
            ssize_t w = write(fd, local, chunk);
            if (w <= 0)
                break;
            sent += w;
            e->bytes = sent;
        }
    } else {
        ssize_t r;
        while ((r = read(fd, local, sizeof local)) > 0) {
            for (ssize_t i = 0; i < r; i++)
                e->checksum += local[i] == (char)((e->bytes + i) * 7 + e->id);
            e->bytes += r;
        }
    }
    close(fd);
    e->ok = 1;
    return NULL;
}

/* first/second: which end opens first; the other waits 100 ms. */
static int run_pair(int id, int writer_first, int use_openat, struct end *r, struct end *w)
{
    *r = (struct end){.id = id, .writer = 0, .use_openat = use_openat};
    *w = (struct end){.id = id, .writer = 1, .use_openat = use_openat};
    (writer_first ? r : w)->delay_ms = 100;
    pthread_t tr, tw;
    pthread_create(&tr, NULL, end_thread, r);
    pthread_create(&tw, NULL, end_thread, w);
    pthread_join(tr, NULL);
    pthread_join(tw, NULL);
    struct end *first = writer_first ? w : r, *second = writer_first ? r : w;
    return r->ok && w->ok && first->opened >= second->began && r->bytes == MESSAGE_BYTES &&
           w->bytes == MESSAGE_BYTES && r->checksum == MESSAGE_BYTES;
}

static void test_pairs(void)
{
    struct end r, w;
    make_fifo(0);
    check("reader opens first, returns only after the writer's open; data passes",
          run_pair(0, 0, 0, &r, &w));
    check("writer opens first, returns only after the reader's open; data passes",
          run_pair(0, 1, 0, &r, &w));
    check("the same with openat", run_pair(0, 0, 1, &r, &w) && run_pair(0, 1, 1, &r, &w));

    /* 20 FIFOs at once, half with the reader first */
    static struct end rs[PAIRS], ws[PAIRS];
    pthread_t t[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        make_fifo(i + 1);
        rs[i] = (struct end){.id = i + 1, .writer = 0, .delay_ms = i % 2 ? 50 : 0};
        ws[i] = (struct end){.id = i + 1, .writer = 1, .delay_ms = i % 2 ? 0 : 50};
    }
    for (int i = 0; i < PAIRS; i++) {
        pthread_create(&t[2 * i], NULL, end_thread, &rs[i]);
        pthread_create(&t[2 * i + 1], NULL, end_thread, &ws[i]);
    }
    for (int i = 0; i < 2 * PAIRS; i++)
        pthread_join(t[i], NULL);
    int good = 0;
    for (int i = 0; i < PAIRS; i++)
        good += rs[i].ok && ws[i].ok && rs[i].bytes == MESSAGE_BYTES &&
                rs[i].checksum == MESSAGE_BYTES && ws[i].bytes == MESSAGE_BYTES;
    printf("%d FIFOs opened by both ends at once: %d passed their data\n", PAIRS, good);
    if (good != PAIRS)
        failures++;
}

/* ---- non-blocking forms ------------------------------------------------ */

static void test_nonblocking(void)
{
    char path[128];
    fifo_path(path, sizeof path, 0);
    errno = 0;
    int w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    check("O_WRONLY|O_NONBLOCK with no reader is ENXIO", w == -1 && errno == ENXIO);
    int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    char c;
    errno = 0;
    ssize_t got = r >= 0 ? read(r, &c, 1) : -2;
    check("O_RDONLY|O_NONBLOCK opens at once; read with no writer is 0", r >= 0 && got == 0);
    w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    int wrote = w >= 0 && write(w, "z", 1) == 1;
    errno = 0;
    got = r >= 0 ? read(r, &c, 1) : -2;
    check("then O_WRONLY|O_NONBLOCK opens; a byte passes", wrote && got == 1 && c == 'z');
    errno = 0;
    got = read(r, &c, 1);
    check("an empty FIFO with a writer is EAGAIN on a non-blocking read",
          got == -1 && errno == EAGAIN);
    int flags = fcntl(r, F_GETFL);
    check("F_GETFL shows O_NONBLOCK as opened", flags >= 0 && (flags & O_NONBLOCK));
    close(w);
    close(r);
    int rw = open(path, O_RDWR | O_CLOEXEC);
    check("O_RDWR never waits", rw >= 0);
    flags = fcntl(rw, F_GETFL);
    check("F_GETFL shows no O_NONBLOCK on a blocking open", flags >= 0 && !(flags & O_NONBLOCK));
    close(rw);
    /* A write end with its reader there opens in place under fiberize
     * (O_NONBLOCK, then taken off): its status flags must be the blocking
     * open's, O_APPEND kept and O_ASYNC ignored, as open(2) ignores it. */
    r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    w = open(path, O_WRONLY | O_APPEND | O_ASYNC | O_CLOEXEC);
    printf("write end opened with O_APPEND|O_ASYNC, reader there: F_GETFL %#x\n",
           w >= 0 ? (unsigned)fcntl(w, F_GETFL) : 0u);
    close(w);
    close(r);
    errno = 0;
    check("open of a missing FIFO path is ENOENT",
          open("/nonexistent-dir/fifo", O_RDONLY) == -1 && errno == ENOENT);
}

/* ---- signals ----------------------------------------------------------- */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    alarms++;
}

static void *late_writer(void *arg)
{
    char path[128];
    fifo_path(path, sizeof path, 0);
    usleep(300000);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!write(fd, "w", 1);
        close(fd);
    }
    return arg;
}

static void start_alarm(int flags)
{
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = flags};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarms = 0;
    struct itimerval it = {{0, 50000}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void stop_alarm(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
}

static void test_signals(void)
{
    char path[128];
    fifo_path(path, sizeof path, 0);
    start_alarm(0);
    errno = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int e = errno;
    stop_alarm();
    check("a blocked FIFO open ends with EINTR (handler without SA_RESTART)",
          fd == -1 && e == EINTR && alarms >= 1);

    /* SA_RESTART: the open goes on through several signals until the
     * writer (a thread with SIGALRM blocked) opens after 300 ms */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    pthread_t t;
    pthread_create(&t, NULL, late_writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    start_alarm(SA_RESTART);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    stop_alarm();
    char c = 0;
    int got = fd >= 0 && read(fd, &c, 1) == 1 && c == 'w';
    pthread_join(t, NULL);
    if (fd >= 0)
        close(fd);
    check("with SA_RESTART the open survives the signals and gets the writer", got && alarms >= 2);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pool_fifo.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 2;
    test_pairs();
    test_nonblocking();
    test_signals();
    for (int i = 0; i <= PAIRS; i++) {
        char path[128];
        fifo_path(path, sizeof path, i);
        unlink(path);
    }
    rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "done");
    return failures ? 1 : 0;
}
