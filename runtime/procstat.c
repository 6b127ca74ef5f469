/* Reading a /proc stat file with raw system calls (procstat.h). */
#include <fcntl.h>
#include <string.h>
#include "runtime/ownfd.h"
#include "runtime/procstat.h"
#include "runtime/sys.h"

static const char *field_of(char *buf, long n, int field)
{
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    /* field 2 is "(name)": the last ')' ends it, whatever the name holds */
    const char *p = strrchr(buf, ')');
    for (int at = 2; p && at < field; at++)
        p = strchr(p + 1, ' ');
    return p && p[1] ? p + 1 : NULL;
}

const char *fz_procstat_field(const char *path, bool owned, char *buf, size_t size, int field)
{
    if (size < 2 || field < 3)
        return NULL;
    int fd = (int)fz_sys4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0 || (owned && !fz_ownfd_adopt(&fd, false)))
        return NULL;
    long n = fz_sys3(SYS_read, fd, buf, size - 1);
    if (owned)
        fz_ownfd_release(&fd);
    else
        fz_sys1(SYS_close, fd);
    return field_of(buf, n, field);
}

const char *fz_procstat_field_fd(int fd, char *buf, size_t size, int field)
{
    if (size < 2 || field < 3)
        return NULL;
    return field_of(buf, fz_sys4(SYS_pread64, fd, buf, size - 1, 0), field);
}
