/* set*id from fibers.  glibc: its SIGSETXID handler, wrapped
 * (runtime/setxid_glibc.c).  musl: a broadcast of our own
 * (runtime/setxid_musl.c), since musl's reaches no carrier running a fiber. */
#ifndef FZ_SETXID_H
#define FZ_SETXID_H

/* Once the process is multi-threaded (glibc has installed its handler),
 * wrap it so it runs on the TCB that carries the receiving OS thread's tid.
 * Idempotent and cheap after the first success. */
void fz_setxid_wrap_handler(void);

/* libc is told it is single-threaded again (fz_tls_alone): at its next
 * thread it installs its own handler again, to be wrapped again. */
void fz_setxid_handler_will_return(void);

/* musl: make the credential system call nr(a, b, c) on the calling thread
 * and then on every other thread of the process, as musl's __setxid does:
 * the caller's result (0 or -errno) is returned; a thread that fails after
 * the caller succeeded leaves the credentials mixed, and the process is
 * killed (SIGKILL), as musl does. */
long fz_setxid_broadcast(long nr, long a, long b, long c);

#endif
