/* Internal interface between the lock interposers (mutex.c, cond.c): a
 * condition variable waits by unlocking and relocking the program's mutex
 * with the same algorithm the program's own calls use. */
#ifndef FZ_SYNC_H
#define FZ_SYNC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* pthread_mutex_lock / unlock as the interposers do them (runtime active).
 * Return 0 or the errno glibc would give. */
int fz_mutex_lock(pthread_mutex_t *m);
int fz_mutex_unlock(pthread_mutex_t *m);

/* Does this call take the runtime's path, or glibc's? */
_Bool fz_sync_hooked(void);

#endif
