/* The control socket: how `fiberize dump PID` and `fiberize stats PID`
 * reach a running program.
 *
 * Opened only when asked (FIBERIZE_CONTROL=1, `fiberize --control`), as a
 * Unix stream socket at DIR/fiberize-PID.sock, where DIR is
 * $XDG_RUNTIME_DIR when that is a private directory of ours, else
 * /tmp/fiberize-UID (made 0700; refused if it is not ours and private).
 * The socket is 0600, and every connection's peer credentials
 * (SO_PEERCRED) must be the program's own user or root: anyone else gets
 * one line saying no, and nothing else.  Removed at exit (not by a forked
 * child, which did not open it).
 *
 * Protocol: the client sends one line, "dump" or "stats"; the answer is
 * the dump's text, or the figures as one JSON line (runtime/statsview.h),
 * and the connection closes.  Served by the observer thread (observe.c),
 * one client at a time, with 5 s send and receive time-outs so a stuck
 * client cannot keep it.  Raw system calls throughout: no interposer of
 * ours is involved.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "preload/config.h"
#include "preload/observe.h"
#include "runtime/ownfd.h"
#include "runtime/stats.h"
#include "runtime/statsview.h"
#include "runtime/sys.h"
#include "syscalls/hook.h"

static int listen_fd = -1;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pid_t owner_pid;

static void warn(const char *what)
{
    char line[256];
    int n = snprintf(line, sizeof line, "fiberize: no control socket: %s\n", what);
    if (n > 0)
        fz_sys3(SYS_write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* A directory only we can enter: ours, not a link, no group/other bits. */
static bool private_dir(const char *dir)
{
    struct stat st;
    return fz_sys2(SYS_lstat, dir, &st) == 0 && S_ISDIR(st.st_mode) &&
           st.st_uid == (uid_t)fz_sys0(SYS_geteuid) && (st.st_mode & 077) == 0;
}

static bool pick_dir(char *dir, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/' && strlen(xdg) < len && private_dir(xdg)) {
        strcpy(dir, xdg);
        return true;
    }
    snprintf(dir, len, "/tmp/fiberize-%d", (int)fz_sys0(SYS_geteuid));
    fz_sys2(SYS_mkdir, dir, 0700);
    return private_dir(dir);
}

void fz_control_remove(void)
{
    if (listen_fd >= 0 && (pid_t)fz_sys0(SYS_getpid) == owner_pid)
        fz_sys1(SYS_unlink, sock_path);
}

void fz_control_close(void)
{
    fz_control_remove();
    if (listen_fd >= 0)
        fz_ownfd_release(&listen_fd); /* leaves it -1 */
}

void fz_control_open(void)
{
    char dir[sizeof sock_path];
    if (!pick_dir(dir, sizeof dir)) {
        warn("no private directory ($XDG_RUNTIME_DIR or /tmp/fiberize-UID)");
        return;
    }
    owner_pid = (pid_t)fz_sys0(SYS_getpid);
    int n = snprintf(sock_path, sizeof sock_path, "%s/fiberize-%d.sock", dir, (int)owner_pid);
    if (n < 0 || (size_t)n >= sizeof sock_path) {
        warn("the socket's path is too long");
        return;
    }
    int fd = (int)fz_sys3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        warn("socket() failed");
        return;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, sock_path, (size_t)n + 1);
    fz_sys1(SYS_unlink, sock_path); /* a dead process of the same pid left it */
    if (fz_sys3(SYS_bind, fd, &a, sizeof a) != 0 || fz_sys2(SYS_chmod, sock_path, 0600) != 0 ||
        fz_sys2(SYS_listen, fd, 16) != 0) {
        warn("cannot bind or listen");
        fz_sys1(SYS_close, fd);
        return;
    }
    fz_ownfd_adopt(&fd, true); /* out of the program's reach (closefrom, dup2) */
    listen_fd = fd;
    fz_exit_hook = fz_control_remove;
    atexit(fz_control_remove);
}

int fz_control_fd(void)
{
    return listen_fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        long w = fz_sys3(SYS_write, fd, p, n);
        if (w == -EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void send_stats(int fd)
{
    struct fz_view *v = calloc(1, sizeof *v);
    size_t cap = 256 + FZ_VIEW_MAX_CARRIERS * 128 + FZ_V_COUNT * 48;
    char *buf = malloc(cap);
    if (v && buf) {
        fz_stats_view(v);
        size_t n = fz_view_json(v, buf, cap);
        send_all(fd, buf, n < cap ? n : cap - 1);
    }
    free(buf);
    free(v);
}

/* One line, up to a newline or end of input. */
static bool read_request(int fd, char *line, size_t len)
{
    size_t n = 0;
    while (n < len - 1) {
        long r = fz_sys3(SYS_read, fd, line + n, 1);
        if (r == -EINTR)
            continue;
        if (r <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return n > 0;
}

void fz_control_serve(void)
{
    int c = (int)fz_sys4(SYS_accept4, listen_fd, 0, 0, SOCK_CLOEXEC);
    if (c < 0 || !fz_ownfd_adopt(&c, false))
        return;
    struct timeval limit = {5, 0};
    fz_sys6(SYS_setsockopt, c, SOL_SOCKET, SO_SNDTIMEO, (long)&limit, sizeof limit, 0);
    fz_sys6(SYS_setsockopt, c, SOL_SOCKET, SO_RCVTIMEO, (long)&limit, sizeof limit, 0);
    char req[64];
    bool asked = read_request(c, req, sizeof req);
    struct ucred cred = {.uid = (uid_t)-1};
    socklen_t clen = sizeof cred;
    uid_t me = (uid_t)fz_sys0(SYS_geteuid);
    if (fz_sys6(SYS_getsockopt, c, SOL_SOCKET, SO_PEERCRED, (long)&cred, (long)&clen, 0) != 0 ||
        (cred.uid != me && cred.uid != 0)) {
        char line[128];
        int n = snprintf(line, sizeof line,
                         "fiberize: refused: uid %d is not this process's owner (uid %d)\n",
                         (int)cred.uid, (int)me);
        send_all(c, line, (size_t)n);
        fz_ownfd_release(&c);
        return;
    }
    if (asked) {
        if (strcmp(req, "dump") == 0) {
            fz_observe_dump(c);
        } else if (strcmp(req, "stats") == 0) {
            send_stats(c);
        } else {
            static const char what[] = "fiberize: unknown request (dump or stats)\n";
            send_all(c, what, sizeof what - 1);
        }
    }
    fz_ownfd_release(&c);
}
