/* Reactor: fd readiness waits.  Only the dispatch entry point exists so
 * far; fds are not yet registered with the driver (blocking I/O still runs
 * the real call on the carrier). */
#include "runtime/reactor.h"

void fz_reactor_dispatch(struct fz_carrier *c, uint64_t token, uint32_t events)
{
    (void)c;
    (void)token;
    (void)events;
}
