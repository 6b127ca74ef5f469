/* How many threads process pid has now: the entries of /proc/PID/task
 * (-1 if it cannot be read). */
#ifndef THREADS_OF_H
#define THREADS_OF_H

#include <dirent.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

static int threads_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A joined thread lingers in the kernel a moment after pthread_join
 * returns: its tid is cleared, which ends the join, before the kernel
 * releases it, and on a loaded machine that can take milliseconds (the
 * CI once counted 2 threads after the fork natively).  Look again, for
 * up to SETTLE_TRIES ms, while the count is above want. */
#define SETTLE_TRIES 200

static inline int threads_settled(pid_t pid, int want)
{
    int n;
    for (int i = 0; (n = threads_of(pid)) > want && i < SETTLE_TRIES; i++)
        usleep(1000);
    return n;
}

#endif
