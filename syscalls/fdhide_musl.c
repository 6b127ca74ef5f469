/* musl's getdents(2) wrapper, filtered of the runtime's own fds like
 * getdents64 (fdhide.c).
 *
 * glibc exports no plain getdents; musl 1.2.3 does, and it is the one a
 * program built against musl calls (its headers spell getdents64 as
 * getdents).  musl makes it the getdents64 system call and its struct
 * dirent is the kernel's linux_dirent64 record (src/linux/getdents.c and
 * the SYS_getdents remap in src/internal/syscall.h), so the same filter
 * reads the records.  The real function is found as getdents64, musl's
 * alias of it, so the table needs no entry of its own.
 */
#include <dirent.h>
#include "syscalls/fdguard.h"
#include "syscalls/real.h"

FZ_EXPORT int getdents(int fd, struct dirent *buf, size_t count)
{
    for (;;) {
        ssize_t n = fz_real.getdents64(fd, buf, count);
        if (n <= 0)
            return (int)n;
        n = fz_fd_filter_records(fd, (char *)buf, n);
        if (n > 0)
            return (int)n; /* 0 would read as the end: read on instead */
    }
}
