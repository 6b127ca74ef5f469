/* One thread blocked for a second in a call fiberize cannot make
 * asynchronous, while 100 threads keep taking 10 ms naps.
 *
 *   pool_park KIND    KIND: flock setlkw waitpid wait waitid fifo system
 *                     pclose getaddrinfo fiforead fifowrite
 *
 * Each KIND blocks for about a second on something another process does
 * (a child holds a lock, exits, or opens the FIFO's other end after 1 s;
 * "getaddrinfo" instead looks up "localhost" again and again for a second,
 * since no lookup of /etc/hosts takes that long; "fiforead" reads a FIFO
 * whose writer writes after 1 s, "fifowrite" writes 256 KiB into a FIFO
 * whose reader starts draining after 1 s).  Natively every thread
 * has its own kernel thread; fiberized on one carrier the blocked call must
 * sit in the blocking pool, or the naps run late (and the carrier hand-off
 * monitor has to step in, which FIBERIZE_STATS=1 counts).  Prints how long
 * the call blocked and the worst lateness of any nap, in ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLEEPERS 100
#define NAP_MS 10
#define BLOCK_MS 1000

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static atomic_int stop;
static _Atomic long worst_us;
static atomic_long naps;

static void *sleeper(void *arg)
{
    while (!atomic_load(&stop)) {
        double t0 = now_ms();
        usleep(NAP_MS * 1000);
        long late = (long)((now_ms() - t0 - NAP_MS) * 1000);
        long seen = atomic_load(&worst_us);
        while (late > seen && !atomic_compare_exchange_weak(&worst_us, &seen, late))
            ;
        atomic_fetch_add(&naps, 1);
    }
    return arg;
}

static char dir[64], path[128];
static pid_t helper;   /* the child that ends the wait */
static int go_fd = -1; /* writing a byte starts its second */

/* A child, forked before the naps begin (a fork of a 100-thread process
 * can itself keep a carrier busy for a while): it waits for "go", then
 * runs `job`, and exits with its result. */
static void spawn_helper(int (*job)(void))
{
    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0)
        exit(2);
    helper = fork();
    if (helper == 0) {
        char c;
        close(go[1]);
        (void)!write(ready[1], "r", 1);
        if (read(go[0], &c, 1) != 1)
            _exit(1);
        _exit(job());
    }
    close(go[0]);
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1)
        exit(3);
    close(ready[0]);
    go_fd = go[1];
}

static void say_go(void)
{
    if (write(go_fd, "g", 1) != 1)
        exit(4);
    close(go_fd);
}

static int use_fcntl;
static int holder_pipe[2];

/* Take the lock, say so, hold it for BLOCK_MS; exiting releases it. */
static int hold_lock(void)
{
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (use_fcntl ? fcntl(fd, F_SETLK, &fl) : flock(fd, LOCK_EX))
        return 1;
    (void)!write(holder_pipe[1], "h", 1);
    usleep(BLOCK_MS * 1000);
    return 0;
}

static int nap_then_exit(void)
{
    usleep(BLOCK_MS * 1000);
    return 7;
}

static int open_writer_late(void)
{
    usleep(BLOCK_MS * 1000);
    int fd = open(path, O_WRONLY);
    return fd >= 0 && write(fd, "f", 1) == 1 ? 0 : 1;
}

#define FIFO_BYTES (256 * 1024)

static int writer_writes_late(void)
{
    int fd = open(path, O_WRONLY);
    usleep(BLOCK_MS * 1000);
    return fd >= 0 && write(fd, "f", 1) == 1 ? 0 : 1;
}

static int reader_drains_late(void)
{
    int fd = open(path, O_RDONLY);
    usleep(BLOCK_MS * 1000);
    static char buf[65536];
    long got = 0;
    ssize_t r;
    while (fd >= 0 && (r = read(fd, buf, sizeof buf)) > 0)
        got += r;
    return got == FIFO_BYTES ? 0 : 1;
}

/* Everything that forks, before the naps start. */
static int prepare(const char *kind)
{
    if (strcmp(kind, "flock") == 0 || strcmp(kind, "setlkw") == 0) {
        use_fcntl = kind[0] == 's';
        if (pipe(holder_pipe) != 0)
            return -1;
        spawn_helper(hold_lock);
    } else if (strcmp(kind, "waitpid") == 0 || strcmp(kind, "wait") == 0 ||
               strcmp(kind, "waitid") == 0) {
        spawn_helper(nap_then_exit);
    } else if (strcmp(kind, "fifo") == 0) {
        if (mkfifo(path, 0600) != 0)
            return -1;
        spawn_helper(open_writer_late);
    } else if (strcmp(kind, "fiforead") == 0 || strcmp(kind, "fifowrite") == 0) {
        if (mkfifo(path, 0600) != 0)
            return -1;
        spawn_helper(kind[4] == 'r' ? writer_writes_late : reader_drains_late);
    } else if (strcmp(kind, "system") != 0 && strcmp(kind, "pclose") != 0 &&
               strcmp(kind, "getaddrinfo") != 0) {
        return -2;
    }
    return 0;
}

static int helper_status(void)
{
    int st = -1;
    return waitpid(helper, &st, 0) == helper && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The blocking call; returns 0 when it did what it should. */
static int block_in(const char *kind)
{
    int st = -1;
    if (strcmp(kind, "flock") == 0 || strcmp(kind, "setlkw") == 0) {
        char c;
        say_go();
        if (read(holder_pipe[0], &c, 1) != 1)
            return -1;
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int rc = use_fcntl ? fcntl(fd, F_SETLKW, &fl) : flock(fd, LOCK_EX);
        close(fd);
        return rc == 0 && helper_status() == 0 ? 0 : -1;
    }
    if (strcmp(kind, "waitpid") == 0) {
        say_go();
        return waitpid(helper, &st, 0) == helper && WEXITSTATUS(st) == 7 ? 0 : -1;
    }
    if (strcmp(kind, "wait") == 0) {
        say_go();
        return wait(&st) == helper && WEXITSTATUS(st) == 7 ? 0 : -1;
    }
    if (strcmp(kind, "waitid") == 0) {
        int fd = (int)syscall(SYS_pidfd_open, helper, 0);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        say_go();
        int rc = waitid(3 /* P_PIDFD */, fd, &si, WEXITED);
        close(fd);
        return rc == 0 && si.si_pid == helper && si.si_status == 7 ? 0 : -1;
    }
    if (strcmp(kind, "fifo") == 0) {
        say_go();
        int fd = open(path, O_RDONLY);
        char c = 0;
        int ok = fd >= 0 && read(fd, &c, 1) == 1 && c == 'f';
        close(fd);
        return ok && helper_status() == 0 ? 0 : -1;
    }
    if (strcmp(kind, "fiforead") == 0) {
        say_go();
        int fd = open(path, O_RDONLY);
        char c = 0;
        int ok = fd >= 0 && read(fd, &c, 1) == 1 && c == 'f';
        close(fd);
        return ok && helper_status() == 0 ? 0 : -1;
    }
    if (strcmp(kind, "fifowrite") == 0) {
        static char data[FIFO_BYTES];
        say_go();
        int fd = open(path, O_WRONLY);
        int ok = fd >= 0 && write(fd, data, sizeof data) == (ssize_t)sizeof data;
        close(fd);
        return ok && helper_status() == 0 ? 0 : -1;
    }
    if (strcmp(kind, "system") == 0)
        return system("sleep 1; exit 7") == 7 << 8 ? 0 : -1;
    if (strcmp(kind, "pclose") == 0) {
        FILE *f = popen("sleep 1; exit 7", "r");
        return f && pclose(f) == 7 << 8 ? 0 : -1;
    }
    double end = now_ms() + BLOCK_MS; /* getaddrinfo */
    while (now_ms() < end) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo("localhost", "80", &hints, &res) != 0)
            return -1;
        freeaddrinfo(res);
    }
    return 0;
}

static const char *kind;
static int outcome;
static double blocked_ms;

static void *blocker(void *arg)
{
    usleep(50000); /* the sleepers are napping by now */
    double t0 = now_ms();
    outcome = block_in(kind);
    blocked_ms = now_ms() - t0;
    return arg;
}

int main(int argc, char **argv)
{
    kind = argc > 1 ? argv[1] : "flock";
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pool_park.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 2;
    snprintf(path, sizeof path, "%s/target", dir);

    int prepared = prepare(kind);
    if (prepared == -2) {
        fprintf(stderr, "pool_park: unknown kind %s\n", kind);
        return 2;
    }
    if (prepared != 0)
        return 2;
    pthread_t s[SLEEPERS], b;
    for (int i = 0; i < SLEEPERS; i++)
        pthread_create(&s[i], NULL, sleeper, NULL);
    pthread_create(&b, NULL, blocker, NULL);
    pthread_join(b, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < SLEEPERS; i++)
        pthread_join(s[i], NULL);
    unlink(path);
    rmdir(dir);

    printf("%s: %s, blocked %.0f ms\n", kind, outcome == 0 ? "ok" : "FAILED", blocked_ms);
    printf("naps: %ld, worst lateness %ld ms\n", atomic_load(&naps),
           (atomic_load(&worst_us) + 999) / 1000);
    return outcome == 0 ? 0 : 1;
}
