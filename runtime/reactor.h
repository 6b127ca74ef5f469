/* Reactor: fd readiness waits on the driver's epoll instance. */
#ifndef FZ_REACTOR_H
#define FZ_REACTOR_H

#include <stdint.h>

struct fz_carrier;

/* Driver side: an epoll event whose data is `token` fired. */
void fz_reactor_dispatch(struct fz_carrier *c, uint64_t token, uint32_t events);

#endif
