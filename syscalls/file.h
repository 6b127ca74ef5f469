/* File locks that wait (syscalls/file.c), for fcntl's interposer. */
#ifndef FZ_FILE_H
#define FZ_FILE_H

struct flock;

/* fcntl(fd, F_SETLKW or F_OFD_SETLKW, lock), waiting in the blocking pool. */
int fz_fcntl_lock_wait(int fd, int cmd, struct flock *lock);

#endif
