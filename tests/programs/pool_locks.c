/* File locks and syncs: flock, fcntl F_SETLKW / F_OFD_SETLKW, lockf,
 * fsync, fdatasync and sync_file_range.
 *
 * The blocking ones wait for another process or another thread of this
 * one; fiberize runs them in its blocking pool so the thread that will
 * release the lock keeps running.  Order is made exact with pipes, and a
 * waiter is known to be blocked when /proc/locks lists it ("->" lines), so
 * the results never depend on timing.  Signals: a handler without
 * SA_RESTART ends a blocked flock or F_SETLKW with EINTR (the classic
 * `alarm(1); flock(fd, LOCK_EX)` timeout), with SA_RESTART the call goes
 * on.  Cancellation: F_SETLKW is a cancellation point, flock is not
 * (skipped when FZ_NO_CANCEL_TESTS is set).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;
static char dir[64], path[128];

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

/* A child left waiting for a byte from a parent that crashed would hold
 * the test's output open forever. */
static void die_with_parent(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static int open_file(void)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("open");
        exit(2);
    }
    return fd;
}

/* Wait (at most 10 s) until /proc/locks shows a blocked waiter of `kind`
 * (FLOCK, POSIX, OFDLCK), from process `pid` unless pid is 0. */
static int wait_for_waiter(const char *kind, pid_t pid)
{
    for (int tries = 0; tries < 2000; tries++) {
        FILE *f = fopen("/proc/locks", "r");
        char line[256];
        int found = 0;
        while (f && fgets(line, sizeof line, f)) {
            char k[16];
            long p;
            if (strstr(line, "->") && sscanf(line, "%*s -> %15s %*s %*s %ld", k, &p) == 2 &&
                strcmp(k, kind) == 0 && (pid == 0 || p == pid))
                found = 1;
        }
        if (f)
            fclose(f);
        if (found)
            return 1;
        usleep(5000);
    }
    return 0;
}

static void send_byte(int fd, char c)
{
    if (write(fd, &c, 1) != 1)
        exit(3);
}

static char get_byte(int fd)
{
    char c = '?';
    if (read(fd, &c, 1) != 1)
        return '!';
    return c;
}

static int reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- flock across processes ------------------------------------------- */

static void test_flock_processes(void)
{
    int fd = open_file(), up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0 || flock(fd, LOCK_EX) != 0)
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        die_with_parent();
        int mine = open_file(); /* its own open file description */
        send_byte(up[1], flock(mine, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK ? 'b' : 'x');
        int rc = flock(mine, LOCK_EX);
        send_byte(up[1], rc == 0 ? 'g' : 'e');
        get_byte(down[0]); /* parent checked that we hold it: wait, then exit */
        _exit(0);
    }
    char first = get_byte(up[0]);
    int blocked = wait_for_waiter("FLOCK", pid);
    int other = open_file();
    int still_mine = flock(other, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK;
    close(other);
    flock(fd, LOCK_UN);
    char got = get_byte(up[0]);
    other = open_file();
    int child_holds = flock(other, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
    send_byte(down[1], 'q');
    int status = reap(pid);
    int after = flock(other, LOCK_EX | LOCK_NB) == 0;
    close(other);
    close(fd);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    check("flock: the child's LOCK_NB fails while the parent holds LOCK_EX", first == 'b');
    check("flock: the child blocks in LOCK_EX (listed in /proc/locks)", blocked && still_mine);
    check("flock: it gets the lock once the parent unlocks, and holds it",
          got == 'g' && child_holds);
    check("flock: the child's exit releases it", status == 0 && after);
}

/* ---- flock between threads of one process (two open file descriptions) */

static int shared_fd;
static atomic_int thread_step;

static void *flock_thread(void *arg)
{
    int fd = open_file();
    atomic_store(&thread_step, 1);
    int rc = flock(fd, LOCK_EX);
    atomic_store(&thread_step, rc == 0 ? 2 : -1);
    flock(fd, LOCK_UN);
    close(fd);
    return arg;
}

static void test_flock_threads(void)
{
    shared_fd = open_file();
    flock(shared_fd, LOCK_EX);
    atomic_store(&thread_step, 0);
    pthread_t t;
    pthread_create(&t, NULL, flock_thread, NULL);
    int blocked = wait_for_waiter("FLOCK", getpid());
    int waiting = atomic_load(&thread_step) == 1;
    flock(shared_fd, LOCK_UN);
    pthread_join(t, NULL);
    close(shared_fd);
    check("flock: a thread blocks on another thread's lock, then gets it",
          blocked && waiting && atomic_load(&thread_step) == 2);
}

/* ---- flock and F_SETLKW interrupted by signals ------------------------- */

static volatile sig_atomic_t alarmed;
static volatile int release_on_alarm = -1;

static void on_alarm(int sig)
{
    alarmed++;
    if (release_on_alarm >= 0)
        (void)!write(release_on_alarm, "r", 1);
}

/* A child that takes the lock (flock or whole-file F_SETLK write), says
 * 'h', and lets go when it reads a byte, then exits. */
static pid_t spawn_holder(int use_fcntl, int *to_child, int *from_child)
{
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0)
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        die_with_parent();
        int fd = open_file();
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int rc = use_fcntl ? fcntl(fd, F_SETLK, &fl) : flock(fd, LOCK_EX);
        send_byte(up[1], rc == 0 ? 'h' : 'x');
        get_byte(down[0]);
        _exit(0); /* exiting releases the lock */
    }
    close(down[0]);
    close(up[1]);
    *to_child = down[1];
    *from_child = up[0];
    if (get_byte(up[0]) != 'h')
        exit(4);
    return pid;
}

static int lock_with(int use_fcntl, int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return use_fcntl ? fcntl(fd, F_SETLKW, &fl) : flock(fd, LOCK_EX);
}

static void interrupt_case(int use_fcntl)
{
    const char *name = use_fcntl ? "fcntl(F_SETLKW)" : "flock(LOCK_EX)";
    char what[160];
    int to_child, from_child;
    pid_t pid = spawn_holder(use_fcntl, &to_child, &from_child);
    int fd = open_file();

    /* the timeout pattern: alarm(1), a handler without SA_RESTART */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarmed = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm(1);
    errno = 0;
    int rc = lock_with(use_fcntl, fd);
    int e = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);
    double waited = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    snprintf(what, sizeof what, "%s times out with EINTR after alarm(1)", name);
    check(what, rc == -1 && e == EINTR && alarmed == 1 && waited > 0.9 && waited < 10);

    /* with SA_RESTART the handler's write lets the holder go: the call
     * goes on and gets the lock */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    alarmed = 0;
    release_on_alarm = to_child;
    struct itimerval it = {{0, 0}, {0, 200000}};
    setitimer(ITIMER_REAL, &it, NULL);
    errno = 0;
    rc = lock_with(use_fcntl, fd);
    e = errno;
    release_on_alarm = -1;
    signal(SIGALRM, SIG_DFL);
    snprintf(what, sizeof what, "%s with SA_RESTART goes on and gets the lock", name);
    check(what, rc == 0 && alarmed == 1);
    int status = reap(pid);
    close(fd);
    close(to_child);
    close(from_child);
    if (status != 0)
        failures++;
}

/* ---- fcntl F_SETLKW across processes, and deadlock detection ----------- */

static int lock_range(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

static void test_setlkw_deadlock(void)
{
    int fd = open_file(), up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0)
        exit(2);
    lock_range(fd, F_SETLK, F_WRLCK, 0, 1);
    pid_t pid = fork();
    if (pid == 0) {
        die_with_parent();
        int mine = open_file();
        int rc = lock_range(mine, F_SETLK, F_WRLCK, 1, 1);
        send_byte(up[1], rc == 0 ? 'h' : 'x');
        rc = lock_range(mine, F_SETLKW, F_WRLCK, 0, 1); /* blocks on the parent */
        send_byte(up[1], rc == 0 ? 'g' : 'e');
        get_byte(down[0]);
        _exit(0);
    }
    char held = get_byte(up[0]);
    int blocked = wait_for_waiter("POSIX", pid);
    struct flock query = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
    fcntl(fd, F_GETLK, &query);
    errno = 0;
    int rc = lock_range(fd, F_SETLKW, F_WRLCK, 1, 1); /* would close the cycle */
    int e = errno;
    lock_range(fd, F_SETLK, F_UNLCK, 0, 1);
    char got = get_byte(up[0]);
    send_byte(down[1], 'q');
    int status = reap(pid);
    rc = rc == -1 && e == EDEADLK;
    close(fd);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    check("F_GETLK reports the child's lock on byte 1",
          held == 'h' && query.l_type == F_WRLCK && query.l_pid == pid);
    check("F_SETLKW: the child blocks on byte 0 (listed in /proc/locks)", blocked);
    check("F_SETLKW on byte 1 then is EDEADLK", rc);
    check("the child gets byte 0 once it is unlocked", got == 'g' && status == 0);
}

/* ---- OFD locks between two threads of one process ---------------------- */

static atomic_int ofd_step;

static void *ofd_thread(void *arg)
{
    int fd = open_file();
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int busy = fcntl(fd, F_OFD_SETLK, &fl) == -1 && errno == EAGAIN;
    atomic_store(&ofd_step, busy ? 1 : -1);
    int rc = fcntl(fd, F_OFD_SETLKW, &fl);
    atomic_store(&ofd_step, rc == 0 ? 2 : -2);
    fl.l_type = F_UNLCK;
    fcntl(fd, F_OFD_SETLK, &fl);
    close(fd);
    return arg;
}

static void test_ofd_threads(void)
{
    int fd = open_file();
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    fcntl(fd, F_OFD_SETLK, &fl);
    atomic_store(&ofd_step, 0);
    pthread_t t;
    pthread_create(&t, NULL, ofd_thread, NULL);
    int blocked = wait_for_waiter("OFDLCK", 0);
    int step = atomic_load(&ofd_step);
    fl.l_type = F_UNLCK;
    fcntl(fd, F_OFD_SETLK, &fl);
    pthread_join(t, NULL);
    close(fd);
    check("F_OFD_SETLKW: a thread blocks on another open file description, then gets it",
          blocked && step == 1 && atomic_load(&ofd_step) == 2);

    /* classic POSIX locks belong to the process: threads never conflict */
    int a = open_file(), b = open_file();
    int ra = lock_range(a, F_SETLKW, F_WRLCK, 0, 0);
    int rb = lock_range(b, F_SETLKW, F_WRLCK, 0, 0);
    check("F_SETLKW: two fds of one process do not conflict", ra == 0 && rb == 0);
    close(a); /* drops the process's locks on the file */
    close(b);
}

/* ---- lockf ------------------------------------------------------------- */

static void test_lockf(void)
{
    int fd = open_file(), up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0)
        exit(2);
    lseek(fd, 0, SEEK_SET);
    int locked = lockf(fd, F_LOCK, 10) == 0;
    pid_t pid = fork();
    if (pid == 0) {
        die_with_parent();
        int mine = open_file();
        int t = lockf(mine, F_TLOCK, 10) == -1 && (errno == EACCES || errno == EAGAIN);
        int q = lockf(mine, F_TEST, 10) == -1 && (errno == EACCES || errno == EAGAIN);
        send_byte(up[1], t && q ? 'b' : 'x');
        int rc = lockf(mine, F_LOCK, 10);
        send_byte(up[1], rc == 0 ? 'g' : 'e');
        get_byte(down[0]);
        rc = lockf(mine, F_ULOCK, 10);
        send_byte(up[1], rc == 0 ? 'u' : 'e');
        get_byte(down[0]);
        _exit(0);
    }
    char tried = get_byte(up[0]);
    int blocked = wait_for_waiter("POSIX", pid);
    int test_mine = lockf(fd, F_TEST, 10) == 0; /* our own lock never blocks us */
    lockf(fd, F_ULOCK, 10);
    char got = get_byte(up[0]);
    int busy = lockf(fd, F_TLOCK, 10) == -1 && (errno == EACCES || errno == EAGAIN);
    send_byte(down[1], 'u');
    char unlocked = get_byte(up[0]);
    int again = lockf(fd, F_TLOCK, 10) == 0;
    send_byte(down[1], 'q');
    int status = reap(pid);
    errno = 0;
    int bad = lockf(fd, 12345, 10) == -1 && errno == EINVAL;
    close(fd);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    check("lockf: F_LOCK, and the child's F_TLOCK/F_TEST fail", locked && tried == 'b');
    check("lockf: the child blocks in F_LOCK (listed in /proc/locks)", blocked && test_mine);
    check("lockf: it gets the lock after F_ULOCK; ours then fails F_TLOCK", got == 'g' && busy);
    check("lockf: after the child's F_ULOCK, F_TLOCK succeeds",
          unlocked == 'u' && again && status == 0);
    check("lockf: an unknown command is EINVAL", bad);
}

/* ---- cancellation: F_SETLKW is a cancellation point, flock is not ------ */

static atomic_int cancel_step;

static void *cancel_lock_thread(void *arg)
{
    int use_fcntl = (int)(long)arg;
    int fd = open_file();
    atomic_store(&cancel_step, 1);
    int rc = lock_with(use_fcntl, fd);
    atomic_store(&cancel_step, rc == 0 ? 2 : -errno); /* flock only: got it, then... */
    usleep(1000);                                     /* ...a cancellation point acts */
    atomic_store(&cancel_step, 3);
    close(fd);
    return NULL;
}

static void test_cancel(void)
{
    int to_child, from_child;
    pid_t pid = spawn_holder(1, &to_child, &from_child);
    atomic_store(&cancel_step, 0);
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, cancel_lock_thread, (void *)1L);
    int blocked = wait_for_waiter("POSIX", getpid());
    pthread_cancel(t);
    pthread_join(t, &ret);
    int step = atomic_load(&cancel_step);
    send_byte(to_child, 'q');
    int status = reap(pid);
    close(to_child);
    close(from_child);
    check("pthread_cancel ends a blocked F_SETLKW",
          blocked && ret == PTHREAD_CANCELED && step == 1 && status == 0);
    if (!(blocked && ret == PTHREAD_CANCELED && step == 1 && status == 0))
        fprintf(stderr, "F_SETLKW cancel: blocked %d, %s, step %d\n", blocked,
                ret == PTHREAD_CANCELED ? "cancelled" : "not cancelled", step);

    pid = spawn_holder(0, &to_child, &from_child);
    atomic_store(&cancel_step, 0);
    pthread_create(&t, NULL, cancel_lock_thread, (void *)0L);
    blocked = wait_for_waiter("FLOCK", getpid());
    pthread_cancel(t);
    usleep(200000);
    int still = atomic_load(&cancel_step) == 1; /* flock is no cancellation point */
    send_byte(to_child, 'q');
    pthread_join(t, &ret);
    step = atomic_load(&cancel_step);
    status = reap(pid);
    close(to_child);
    close(from_child);
    check("pthread_cancel leaves a blocked flock alone; it acts after the lock is taken",
          blocked && still && ret == PTHREAD_CANCELED && step == 2 && status == 0);
    if (!(blocked && still && ret == PTHREAD_CANCELED && step == 2 && status == 0))
        fprintf(stderr,
                "flock cancel: blocked %d, still in flock 200 ms later %d, %s, step %d (-errno)\n",
                blocked, still, ret == PTHREAD_CANCELED ? "cancelled" : "not cancelled", step);
}

/* ---- syncs and errors -------------------------------------------------- */

static void *sync_thread(void *arg)
{
    int fd = (int)(long)arg;
    int ok = 1;
    for (int i = 0; i < 20; i++) {
        errno = 4321;
        ok &= pwrite(fd, "x", 1, i) == 1 && fsync(fd) == 0 && fdatasync(fd) == 0 &&
              sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE) == 0 && errno == 4321;
    }
    return (void *)(long)ok;
}

static void test_syncs(void)
{
    int fd = open_file();
    pthread_t t[20];
    int good = 0;
    for (int i = 0; i < 20; i++)
        pthread_create(&t[i], NULL, sync_thread, (void *)(long)fd);
    for (int i = 0; i < 20; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        good += ok != NULL;
    }
    printf("fsync/fdatasync/sync_file_range from 20 threads: %d right, errno kept\n", good);
    if (good != 20)
        failures++;

    int p[2];
    if (pipe(p) != 0)
        exit(2);
    errno = 0;
    check("fsync on a pipe is EINVAL", fsync(p[0]) == -1 && errno == EINVAL);
    errno = 0;
    check("fdatasync on a pipe is EINVAL", fdatasync(p[1]) == -1 && errno == EINVAL);
    errno = 0;
    check("fsync(-1) is EBADF", fsync(-1) == -1 && errno == EBADF);
    errno = 0;
    check("sync_file_range with bad flags is EINVAL",
          sync_file_range(fd, 0, 0, 0x100) == -1 && errno == EINVAL);
    errno = 0;
    check("sync_file_range with a negative offset is EINVAL",
          sync_file_range(fd, -1, 0, SYNC_FILE_RANGE_WRITE) == -1 && errno == EINVAL);
    errno = 0;
    check("sync_file_range on a pipe is ESPIPE",
          sync_file_range(p[0], 0, 0, SYNC_FILE_RANGE_WRITE) == -1 && errno == ESPIPE);
    errno = 0;
    check("flock(-1) is EBADF", flock(-1, LOCK_EX) == -1 && errno == EBADF);
    errno = 0;
    check("flock with a bad operation is EINVAL", flock(fd, 0) == -1 && errno == EINVAL);
    errno = 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    check("fcntl(-1, F_SETLKW) is EBADF", fcntl(-1, F_SETLKW, &fl) == -1 && errno == EBADF);
    errno = 0;
    check("F_OFD_SETLKW with l_pid set is EINVAL",
          (fl.l_pid = 1, fcntl(fd, F_OFD_SETLKW, &fl)) == -1 && errno == EINVAL);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    fl.l_pid = 0;
    errno = 0;
    check("F_SETLKW write lock on a read-only fd is EBADF",
          fcntl(ro, F_SETLKW, &fl) == -1 && errno == EBADF);
    close(ro);
    close(p[0]);
    close(p[1]);
    close(fd);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pool_locks.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 2;
    snprintf(path, sizeof path, "%s/lockfile", dir);

    test_flock_processes();
    test_flock_threads();
    interrupt_case(0);
    interrupt_case(1);
    test_setlkw_deadlock();
    test_ofd_threads();
    test_lockf();
    if (!getenv("FZ_NO_CANCEL_TESTS")) /* see pool.bats: native ASan */
        test_cancel();
    test_syncs();

    unlink(path);
    rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "done");
    return failures ? 1 : 0;
}
