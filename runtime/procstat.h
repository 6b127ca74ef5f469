/* A /proc stat file (proc(5): /proc/self/stat, /proc/self/task/TID/stat),
 * read with raw system calls: the monitor asks about carriers while the
 * program runs, start-up counts the process's OS threads, and neither may
 * go through the interposers.
 */
#ifndef FZ_PROCSTAT_H
#define FZ_PROCSTAT_H

#include <stdbool.h>
#include <stddef.h>

/* Read the stat file at path into buf (size bytes, NUL-terminated) and
 * return field `field` (1-based, proc(5)'s numbering; 3 or later: the ones
 * after the command name, which may hold spaces and parentheses), or NULL
 * when it cannot be read.  owned: the fd is made one of the runtime's own
 * while it is open (ownfd.h), as any fd opened while the program's threads
 * run must be; a single-threaded start-up may pass false. */
const char *fz_procstat_field(const char *path, bool owned, char *buf, size_t size, int field);
/* The same from an open stat file, read again from its start (a stat file
 * is made afresh at offset 0). */
const char *fz_procstat_field_fd(int fd, char *buf, size_t size, int field);

#endif
