/* Where glibc's and musl's headers declare the interposed names
 * differently: the one place the interposers ask which libc they are
 * compiled against, so the .c files spell each call once.
 *
 * - Large-file names.  musl has one 64-bit off_t and one struct dirent, and
 *   its headers (musl 1.2.3 under _GNU_SOURCE) spell open64, readdir64,
 *   sendfile64, getdents64... as macros for the plain names, so an
 *   interposer named open64 would be a second definition of open.  The
 *   macros for the function names are dropped here (the type names,
 *   dirent64 and off64_t, stay: the same types are meant).  musl 1.2.3
 *   still exports those names as aliases of the plain functions, so the
 *   interposers under them stay exported with the same meaning; this header
 *   includes every system header that defines one of the macros first, so
 *   none of them comes back when a file includes that header later.
 * - Prototypes that differ: ioctl's request is an int on musl; sendmmsg
 *   and recvmmsg take unsigned flags; musl's getdents(2) wrapper fills
 *   struct dirent records and returns int.
 * - RWF_NOWAIT (Linux 4.14): musl 1.2.3's headers lack it.
 */
#ifndef FZ_LIBC_NAMES_H
#define FZ_LIBC_NAMES_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef __GLIBC__
typedef unsigned long fz_ioctl_request;
typedef int fz_mmsg_flags;
#else
typedef int fz_ioctl_request;
typedef unsigned fz_mmsg_flags;
/* the macros, as musl's headers define them for _GNU_SOURCE */
#undef open64
#undef openat64
#undef creat64
#undef fopen64
#undef freopen64
#undef pread64
#undef pwrite64
#undef lockf64
#undef fcntl64
#undef readdir64
#undef readdir64_r
#undef scandir64
#undef getdents64
#undef sendfile64
#endif

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008 /* <linux/fs.h>, which clashes with glibc's own definition */
#endif

#endif
