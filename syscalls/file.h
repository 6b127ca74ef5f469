/* Regular files and file locks (syscalls/file.c), for the read, write
 * and fcntl interposers. */
#ifndef FZ_FILE_H
#define FZ_FILE_H

#include <stdbool.h>
#include <sys/types.h>

struct flock;

/* fcntl(fd, F_SETLKW or F_OFD_SETLKW, lock), waiting in the blocking pool. */
int fz_fcntl_lock_wait(int fd, int cmd, struct flock *lock);

/* FIBERIZE_FILE_IO=pool and fd is a regular file (or another fd epoll
 * refuses): read and write it with these. */
bool fz_file_io_in_pool(int fd);
ssize_t fz_file_read(int fd, void *buf, size_t len);
ssize_t fz_file_write(int fd, const void *buf, size_t len);

#endif
