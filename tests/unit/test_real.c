/* Unit test for syscalls/real.c's forwarding stubs: a call made before the
 * constructor resolved the real symbols goes through an assembly stub that
 * must hand every argument over untouched -- integer registers, the
 * varargs register count, and arguments passed on the stack.  Each check
 * puts the stubs back in the table, calls through one, and compares with
 * the direct call; the first call through any stub resolves every slot.
 *
 * Like test_config, this includes the file under test (it is not in runtime/). */
#include "../../syscalls/real.c"

#include "tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static void back_to_stubs(void)
{
    atomic_store(&resolved, 0);
#define FZ_REAL_RESET(ret, name, args) fz_real.name = (ret(*) args)fz_real_stub_##name;
    FZ_REAL_ALL_SYMBOLS(FZ_REAL_RESET)
#undef FZ_REAL_RESET
}

int main(void)
{
    char dir[] = "/tmp/fz_test_real.XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    char path[64];
    snprintf(path, sizeof path, "%s/f", dir);

    umask(022);
    /* varargs with the mode in the third register */
    back_to_stubs();
    int fd = fz_real.open(path, O_RDWR | O_CREAT | O_EXCL, 0604);
    struct stat st;
    TAP_CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0604,
              "open through a stub: fd %d, varargs mode passed", fd);
    TAP_CHECK(fz_real.open != (void *)fz_real_stub_open &&
                  fz_real.close != (void *)fz_real_stub_close &&
                  fz_real.waitid != (void *)fz_real_stub_waitid,
              "the first call through a stub resolved every slot");

    /* four integer arguments, one of them 64-bit */
    back_to_stubs();
    ssize_t n = fz_real.pwrite(fd, "abcdef", 6, 3);
    char buf[16] = {0};
    TAP_CHECK(n == 6 && pread(fd, buf, sizeof buf, 0) == 9 && memcmp(buf + 3, "abcdef", 6) == 0,
              "pwrite through a stub: %zd bytes at offset 3", n);

    /* varargs, the count of vector registers in %al */
    back_to_stubs();
    int flags = fz_real.fcntl(fd, F_GETFL);
    TAP_CHECK(flags == fcntl(fd, F_GETFL), "fcntl(F_GETFL) through a stub: %#x", flags);
    back_to_stubs();
    long pid = fz_real.syscall(SYS_getpid);
    TAP_CHECK(pid == getpid(), "syscall(SYS_getpid) through a stub: %ld", pid);

    /* seven arguments: the last one on the stack */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "192.0.2.7", &sa.sin_addr);
    char host[64] = "", serv[16] = "";
    back_to_stubs();
    int r = fz_real.getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv,
                                sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
    TAP_CHECK(r == 0 && strcmp(host, "192.0.2.7") == 0 && strcmp(serv, "8080") == 0,
              "getnameinfo through a stub: stack-passed flags arrive (%d, %s, %s)", r, host, serv);

    /* eight arguments, two on the stack, and a result written back */
    struct in_addr lo = {htonl(INADDR_LOOPBACK)};
    struct hostent he, *res = NULL, he2, *res2 = NULL;
    char tmp[1024], tmp2[1024];
    int herr = 0, herr2 = 0;
    int r2 = gethostbyaddr_r(&lo, sizeof lo, AF_INET, &he2, tmp2, sizeof tmp2, &res2, &herr2);
    back_to_stubs();
    r = fz_real.gethostbyaddr_r(&lo, sizeof lo, AF_INET, &he, tmp, sizeof tmp, &res, &herr);
    TAP_CHECK(r == r2 && (res != NULL) == (res2 != NULL) &&
                  (!res || strcmp(res->h_name, res2->h_name) == 0),
              "gethostbyaddr_r through a stub: both stack arguments arrive (%d, %s)", r,
              res ? res->h_name : "no entry");

    back_to_stubs();
    TAP_CHECK(fz_real.close(fd) == 0, "close through a stub");
    unlink(path);
    rmdir(dir);
    return tap_done();
}
