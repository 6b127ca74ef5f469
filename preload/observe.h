/* The observer: dump signal and control socket (see observe.c, control.c). */
#ifndef FZ_OBSERVE_H
#define FZ_OBSERVE_H

/* After the runtime started: install the dump signal and open the control
 * socket if the configuration asks for them (nothing otherwise). */
void fz_observe_start(void);
/* Write a fiber dump to fd (observer thread only). */
void fz_observe_dump(int fd);

/* The control socket (control.c), served by the observer thread. */
void fz_control_open(void);
int fz_control_fd(void); /* the listening socket, -1 if none */
void fz_control_serve(void);
/* Remove the socket (at exit; only in the process that opened it). */
void fz_control_remove(void);
/* Remove and close it: nothing will serve it. */
void fz_control_close(void);

#endif
