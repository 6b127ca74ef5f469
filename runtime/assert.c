/* fz_throw (see assert.h): report a broken invariant and end the process
 * using raw system calls only, so it works on any thread pointer. */
#include <signal.h>
#include <stddef.h>
#include "runtime/assert.h"
#include "runtime/sys.h"

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_uint(char *buf, size_t at, size_t cap, unsigned v)
{
    char digits[12];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < sizeof digits);
    while (n && at < cap)
        buf[at++] = digits[--n];
    return at;
}

void fz_throw(const char *what, const char *file, int line)
{
    char msg[512];
    size_t n = 0, cap = sizeof msg - 1;
    n = put(msg, n, cap, "fiberize: broken invariant at ");
    n = put(msg, n, cap, file);
    n = put(msg, n, cap, ":");
    n = put_uint(msg, n, cap, line > 0 ? (unsigned)line : 0);
    n = put(msg, n, cap, ": ");
    n = put(msg, n, cap, what);
    msg[n++] = '\n';
    fz_sys3(SYS_write, 2, msg, n);

    struct fz_kernel_sigaction dfl = {(void (*)(int, siginfo_t *, void *))(void (*)(void))SIG_DFL,
                                      0, NULL, 0};
    uint64_t abrt = 1ull << (SIGABRT - 1);
    fz_sys4(SYS_rt_sigaction, SIGABRT, &dfl, NULL, sizeof abrt);
    fz_sys4(SYS_rt_sigprocmask, SIG_UNBLOCK, &abrt, NULL, sizeof abrt);
    fz_sys3(SYS_tgkill, fz_sys0(SYS_getpid), fz_sys0(SYS_gettid), SIGABRT);
    for (;;) /* not reached: SIGABRT's default action ends the process */
        fz_sys1(SYS_exit_group, 128 + SIGABRT);
}
