/* The wait family's contract, case by case.
 *
 * waitpid(pid > 0) and waitid(P_PID / P_PIDFD) park on a pidfd under
 * fiberize; the other forms run in the blocking pool.  Either way the
 * caller must see exactly the native results: WNOHANG never blocks,
 * non-children are ECHILD, stops and continues are reported, SIGCHLD
 * ignored means children reap themselves, and a signal handler installed
 * without SA_RESTART interrupts a blocked wait with EINTR while one with
 * SA_RESTART lets it finish.  Children are held on a pipe ("gate") so
 * each case decides exactly when they exit.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

/* ---- children held on a gate ------------------------------------------- */

struct child {
    pid_t pid;
    int gate; /* write end: closing it lets the child exit */
};

/* Every gate still open in the parent: a new child closes them all, or it
 * would hold its siblings' gates open and they would never exit. */
#define MAX_GATES 16
static volatile int open_gates[MAX_GATES] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                             -1, -1, -1, -1, -1, -1, -1, -1};

static void track_gate(int fd)
{
    for (int i = 0; i < MAX_GATES; i++)
        if (open_gates[i] < 0) {
            open_gates[i] = fd;
            return;
        }
    exit(2);
}

/* Async-signal-safe: the SIGALRM handler closes gates too. */
static void close_gate(int fd)
{
    for (int i = 0; i < MAX_GATES; i++)
        if (open_gates[i] == fd)
            open_gates[i] = -1;
    close(fd);
}

/* A child that exits with `code` once its gate closes (or a byte comes). */
static struct child spawn_gated(int code)
{
    int p[2];
    if (pipe(p) != 0)
        exit(2);
    struct child c = {fork(), p[1]};
    if (c.pid == 0) {
        char byte;
        close(p[1]);
        for (int i = 0; i < MAX_GATES; i++)
            if (open_gates[i] >= 0)
                close(open_gates[i]);
        (void)!read(p[0], &byte, 1);
        _exit(code);
    }
    close(p[0]);
    track_gate(p[1]);
    return c;
}

static void release(struct child *c)
{
    if (c->gate >= 0)
        close_gate(c->gate);
    c->gate = -1;
}

static pid_t spawn_exiting(int code)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(code);
    return pid;
}

static int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int exited_with(int st, int code)
{
    return WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* ---- cases ------------------------------------------------------------- */

static void test_wnohang(void)
{
    struct child c = spawn_gated(4);
    int st = -1;
    pid_t r1 = waitpid(c.pid, &st, WNOHANG);
    pid_t r2 = waitpid(-1, &st, WNOHANG);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    int r3 = waitid(P_PID, c.pid, &si, WEXITED | WNOHANG);
    check("WNOHANG on a running child returns 0 (waitpid pid, -1, waitid)",
          r1 == 0 && r2 == 0 && r3 == 0 && si.si_pid == 0);
    release(&c);
    pid_t r4 = waitpid(c.pid, &st, 0);
    check("then waitpid(pid) reaps it with code 4", r4 == c.pid && exited_with(st, 4));
}

static void test_echild(void)
{
    int st;
    errno = 0;
    pid_t r = waitpid(1, &st, 0);
    check("waitpid(1) is ECHILD", r == -1 && errno == ECHILD);
    errno = 0;
    r = waitpid(getpid(), &st, WNOHANG);
    check("waitpid(self) is ECHILD", r == -1 && errno == ECHILD);
    errno = 0;
    r = waitpid(-1, &st, 0);
    check("waitpid(-1) with no children is ECHILD", r == -1 && errno == ECHILD);
    errno = 0;
    r = wait(&st);
    check("wait() with no children is ECHILD", r == -1 && errno == ECHILD);
    siginfo_t si;
    errno = 0;
    int rc = waitid(P_PID, 1, &si, WEXITED);
    check("waitid(P_PID, 1) is ECHILD", rc == -1 && errno == ECHILD);
    errno = 0;
    rc = waitid(P_ALL, 0, &si, WEXITED);
    check("waitid(P_ALL) with no children is ECHILD", rc == -1 && errno == ECHILD);
    int fd = pidfd_open(1);
    errno = 0;
    rc = fd >= 0 ? waitid(P_PIDFD, fd, &si, WEXITED) : -1;
    check("waitid(P_PIDFD) of a non-child is ECHILD", fd >= 0 && rc == -1 && errno == ECHILD);
    if (fd >= 0)
        close(fd);
    errno = 0;
    rc = waitid(P_PIDFD, 1000, &si, WEXITED);
    check("waitid(P_PIDFD) on a bad fd is EBADF", rc == -1 && errno == EBADF);
    errno = 0;
    r = waitpid(-1, &st, 0x40000000 >> 4); /* an option bit nobody defines */
    check("waitpid with an unknown option is EINVAL", r == -1 && errno == EINVAL);
    errno = 0;
    rc = waitid(P_ALL, 0, &si, WNOHANG);
    check("waitid without WEXITED/WSTOPPED/WCONTINUED is EINVAL", rc == -1 && errno == EINVAL);
}

static void test_waitid_forms(void)
{
    struct child c = spawn_gated(5);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    release(&c);
    int rc = waitid(P_PID, c.pid, &si, WEXITED);
    check("waitid(P_PID, WEXITED): pid, CLD_EXITED, status 5",
          rc == 0 && si.si_pid == c.pid && si.si_code == CLD_EXITED && si.si_status == 5 &&
              si.si_signo == SIGCHLD);

    c = spawn_gated(6);
    int fd = pidfd_open(c.pid);
    memset(&si, 0, sizeof si);
    rc = waitid(P_PIDFD, fd, &si, WEXITED | WNOHANG);
    int early = rc == 0 && si.si_pid == 0;
    release(&c);
    memset(&si, 0, sizeof si);
    rc = waitid(P_PIDFD, fd, &si, WEXITED | WNOWAIT);
    int peeked = rc == 0 && si.si_pid == c.pid && si.si_status == 6;
    memset(&si, 0, sizeof si);
    rc = waitid(P_PIDFD, fd, &si, WEXITED);
    check("waitid(P_PIDFD): WNOHANG 0, WNOWAIT peeks, then reaps status 6",
          fd >= 0 && early && peeked && rc == 0 && si.si_pid == c.pid && si.si_code == CLD_EXITED &&
              si.si_status == 6);
    errno = 0;
    rc = waitid(P_PIDFD, fd, &si, WEXITED);
    check("waitid(P_PIDFD) again after reaping is ECHILD", rc == -1 && errno == ECHILD);
    close(fd);

    /* killed by a signal */
    c = spawn_gated(0);
    kill(c.pid, SIGKILL);
    int st;
    pid_t r = waitpid(c.pid, &st, 0);
    check("waitpid(pid) of a SIGKILLed child",
          r == c.pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    release(&c);

    /* process groups: waitpid(-pgid), waitid(P_PGID), waitpid(0) */
    c = spawn_gated(7);
    setpgid(c.pid, c.pid);
    release(&c);
    r = waitpid(-c.pid, &st, 0);
    check("waitpid(-pgid) reaps the group's child", r == c.pid && exited_with(st, 7));
    c = spawn_gated(8);
    setpgid(c.pid, c.pid);
    release(&c);
    memset(&si, 0, sizeof si);
    rc = waitid(P_PGID, c.pid, &si, WEXITED);
    check("waitid(P_PGID) reaps the group's child",
          rc == 0 && si.si_pid == c.pid && si.si_status == 8);
    c = spawn_gated(9);
    release(&c);
    r = waitpid(0, &st, 0);
    check("waitpid(0) reaps a child of our group", r == c.pid && exited_with(st, 9));
    c = spawn_gated(10);
    release(&c);
    memset(&si, 0, sizeof si);
    rc = waitid(P_ALL, 0, &si, WEXITED);
    check("waitid(P_ALL) reaps it", rc == 0 && si.si_pid == c.pid && si.si_status == 10);
}

static void test_rusage(void)
{
    struct child c = spawn_gated(11);
    struct rusage ru;
    memset(&ru, 0xff, sizeof ru);
    release(&c);
    int st;
    pid_t r = wait4(c.pid, &st, 0, &ru);
    check("wait4(pid, rusage) fills rusage", r == c.pid && exited_with(st, 11) &&
                                                 ru.ru_maxrss > 0 && ru.ru_utime.tv_sec >= 0 &&
                                                 ru.ru_utime.tv_usec < 1000000);
    c = spawn_gated(12);
    memset(&ru, 0xff, sizeof ru);
    release(&c);
    r = wait3(&st, 0, &ru);
    check("wait3(rusage) fills rusage",
          r == c.pid && exited_with(st, 12) && ru.ru_maxrss > 0 && ru.ru_stime.tv_usec < 1000000);
    c = spawn_gated(13);
    release(&c);
    r = wait4(-1, &st, 0, NULL);
    check("wait4(-1, NULL rusage)", r == c.pid && exited_with(st, 13));
}

static void test_stop_continue(void)
{
    struct child c = spawn_gated(14);
    int st;
    kill(c.pid, SIGSTOP);
    pid_t r = waitpid(c.pid, &st, WUNTRACED);
    check("waitpid(pid, WUNTRACED) sees SIGSTOP",
          r == c.pid && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    kill(c.pid, SIGCONT);
    r = waitpid(c.pid, &st, WCONTINUED);
    check("waitpid(pid, WCONTINUED) sees SIGCONT", r == c.pid && WIFCONTINUED(st));

    kill(c.pid, SIGSTOP);
    r = waitpid(-1, &st, WUNTRACED);
    check("waitpid(-1, WUNTRACED) sees SIGSTOP", r == c.pid && WIFSTOPPED(st));
    kill(c.pid, SIGCONT);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc = waitid(P_PID, c.pid, &si, WCONTINUED);
    check("waitid(P_PID, WCONTINUED) sees SIGCONT",
          rc == 0 && si.si_pid == c.pid && si.si_code == CLD_CONTINUED);
    kill(c.pid, SIGSTOP);
    int fd = pidfd_open(c.pid);
    memset(&si, 0, sizeof si);
    rc = waitid(P_PIDFD, fd, &si, WSTOPPED);
    check("waitid(P_PIDFD, WSTOPPED) sees SIGSTOP",
          rc == 0 && si.si_code == CLD_STOPPED && si.si_status == SIGSTOP);
    kill(c.pid, SIGCONT);
    release(&c);
    rc = waitid(P_PIDFD, fd, &si, WEXITED);
    check("then it exits with 14", rc == 0 && si.si_code == CLD_EXITED && si.si_status == 14);
    close(fd);
}

/* SIGCHLD ignored: children are reaped by the kernel; wait blocks until
 * they have all gone, then fails with ECHILD. */
static void test_sigchld_ignored(void)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGCHLD, &ign, &old);
    struct child a = spawn_gated(1), b = spawn_gated(2);
    int st;
    release(&a);
    errno = 0;
    pid_t r = waitpid(a.pid, &st, 0);
    check("SIGCHLD ignored: waitpid(pid) ends with ECHILD", r == -1 && errno == ECHILD);
    release(&b);
    errno = 0;
    r = wait(&st);
    int r_errno = errno;
    /* wait may return while the kernel is still releasing the child:
     * give it a second to vanish from the pid table */
    int alive = 1;
    for (int i = 0; i < 1000 && alive; i++) {
        alive = kill(b.pid, 0) == 0;
        if (alive)
            usleep(1000);
    }
    check("SIGCHLD ignored: wait() ends with ECHILD after the last child is gone",
          r == -1 && r_errno == ECHILD && !alive);
    sigaction(SIGCHLD, &old, NULL);
}

/* ---- EINTR and SA_RESTART ---------------------------------------------- */

static volatile sig_atomic_t alarms;
static int in_thread;                  /* for diagnostics: which variant failed */
static volatile int restart_gate = -1; /* closed by the third SIGALRM */

static void on_alarm(int sig)
{
    alarms++;
    if (alarms == 3 && restart_gate >= 0) {
        close_gate(restart_gate);
        restart_gate = -1;
    }
}

/* SIGALRM every 50 ms until stop_alarm, with or without SA_RESTART. */
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

enum wait_form { W_WAITPID_ANY, W_WAITPID_PID, W_WAIT, W_WAIT4_PID, W_WAITID_PIDFD, W_WAITID_ALL };
static const char *const form_names[] = {"waitpid(-1)", "waitpid(pid)",    "wait()",
                                         "wait4(pid)",  "waitid(P_PIDFD)", "waitid(P_ALL)"};

/* One blocking wait of the given form; returns the reaped pid, 0 for a
 * waitid success, or -1 with errno. */
static long wait_form(enum wait_form form, pid_t pid, int pidfd, int *code)
{
    int st = 0;
    siginfo_t si;
    long r;
    memset(&si, 0, sizeof si);
    switch (form) {
    case W_WAITPID_ANY:
        r = waitpid(-1, &st, 0);
        break;
    case W_WAITPID_PID:
        r = waitpid(pid, &st, 0);
        break;
    case W_WAIT:
        r = wait(&st);
        break;
    case W_WAIT4_PID:
        r = wait4(pid, &st, 0, NULL);
        break;
    case W_WAITID_PIDFD:
        r = waitid(P_PIDFD, pidfd, &si, WEXITED);
        break;
    default:
        r = waitid(P_ALL, 0, &si, WEXITED);
        break;
    }
    if (r == 0 && (form == W_WAITID_PIDFD || form == W_WAITID_ALL)) {
        r = si.si_pid;
        st = si.si_status << 8;
    }
    *code = WEXITSTATUS(st);
    return r;
}

/* Without SA_RESTART the wait fails with EINTR; with it the wait goes on
 * through two signals and returns the child the third one released. */
static void interrupt_case(enum wait_form form)
{
    char what[128];
    int code;

    struct child c = spawn_gated(21);
    int fd = pidfd_open(c.pid);
    start_alarm(0);
    errno = 0;
    long r = wait_form(form, c.pid, fd, &code);
    int e = errno;
    stop_alarm();
    snprintf(what, sizeof what, "%s interrupted by a handler without SA_RESTART: EINTR",
             form_names[form]);
    check(what, r == -1 && e == EINTR && alarms >= 1);
    if (!(r == -1 && e == EINTR && alarms >= 1))
        fprintf(stderr, "%s%s: returned %ld errno %d after %d signals\n", form_names[form],
                in_thread ? " (thread)" : "", r, e, (int)alarms);
    release(&c);
    r = wait_form(form, c.pid, fd, &code);
    snprintf(what, sizeof what, "%s then reaps the child", form_names[form]);
    check(what, r == c.pid && code == 21);
    close(fd);

    c = spawn_gated(22);
    fd = pidfd_open(c.pid);
    restart_gate = c.gate;
    c.gate = -1;
    start_alarm(SA_RESTART);
    errno = 0;
    r = wait_form(form, c.pid, fd, &code);
    e = errno;
    stop_alarm();
    snprintf(what, sizeof what, "%s with SA_RESTART survives the signals and reaps",
             form_names[form]);
    check(what, r == c.pid && code == 22 && alarms >= 3);
    close(fd);
}

static void *interrupt_thread(void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    interrupt_case((enum wait_form)(long)arg);
    return NULL;
}

static void test_interrupts(void)
{
    for (int f = W_WAITPID_ANY; f <= W_WAITID_ALL; f++)
        interrupt_case((enum wait_form)f);

    /* the same from a thread, main blocking SIGALRM so the thread gets it */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    printf("-- from a thread:\n");
    in_thread = 1;
    for (long f = W_WAITPID_ANY; f <= W_WAITID_ALL; f++) {
        pthread_t t;
        pthread_create(&t, NULL, interrupt_thread, (void *)f);
        pthread_join(t, NULL);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- waits from threads while main forks ------------------------------- */

static void *reap_one(void *arg)
{
    pid_t pid = (pid_t)(long)arg;
    int st;
    pid_t r = waitpid(pid, &st, 0);
    return (void *)(long)(r == pid && WIFEXITED(st) && WEXITSTATUS(st) == pid % 200);
}

static void test_thread_waiters(void)
{
    enum { N = 50 };
    pthread_t t[N];
    int good = 0;
    for (int i = 0; i < N; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            usleep(1000 * (i % 10));
            _exit(getpid() % 200);
        }
        pthread_create(&t[i], NULL, reap_one, (void *)(long)pid);
    }
    for (int i = 0; i < N; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        good += ok != NULL;
    }
    printf("waitpid(pid) from %d threads: %d right\n", N, good);
    if (good != N)
        failures++;
    pid_t quick = spawn_exiting(3);
    int st;
    check("a child that exited before waitpid is reaped",
          waitpid(quick, &st, 0) == quick && exited_with(st, 3));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_wnohang();
    test_echild();
    test_waitid_forms();
    test_rusage();
    test_stop_continue();
    test_sigchld_ignored();
    test_interrupts();
    test_thread_waiters();
    errno = 0;
    pid_t last = wait(NULL);
    check("no child left", last == -1 && errno == ECHILD);
    printf("%s\n", failures ? "FAILED" : "done");
    return failures ? 1 : 0;
}
