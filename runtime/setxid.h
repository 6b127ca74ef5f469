/* set*id from fibers: glibc's SIGSETXID handler, wrapped (runtime/setxid_glibc.c). */
#ifndef FZ_SETXID_H
#define FZ_SETXID_H

/* Once the process is multi-threaded (glibc has installed its handler),
 * wrap it so it runs on the TCB that carries the receiving OS thread's tid.
 * Idempotent and cheap after the first success. */
void fz_setxid_wrap_handler(void);

#endif
