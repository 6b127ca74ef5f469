/* Thread identity and thread-directed signals, the interposer side
 * (syscalls/sigthread.c), for other interposer files. */
#ifndef FZ_SYSCALLS_IDENT_H
#define FZ_SYSCALLS_IDENT_H

#include <stdbool.h>

/* syscall(2) numbers that take or return a thread id: true (and *result
 * set, errno too) if handled here; false: forward to the real syscall(). */
bool fz_ident_syscall(long number, const long arg[6], long *result);

/* From syscalls/signal.c: does sending sig to a thread that does not block
 * it discard it (SIG_IGN, or SIG_DFL of a signal whose default is to
 * ignore)? */
bool fz_signal_discarded(int sig);

/* The main thread's name is the process's: give it to the main OS thread
 * (/proc/self/comm), whichever carrier the caller runs on. */
void fz_name_main_thread(const char *name);

#endif
