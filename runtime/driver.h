/* The driver: one epoll instance plus the timer wheel, polled by whichever
 * idle carrier holds the driver role (see driver.c). */
#ifndef FZ_DRIVER_H
#define FZ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include "runtime/timer.h"

struct fz_carrier;

bool fz_driver_init(void);
/* From a busy carrier (on a fiber's stack): take the events that are
 * ready without waiting.  The caller holds the driver role. */
void fz_driver_poll_busy(struct fz_carrier *c);
/* From a carrier going idle while another holds the driver role: take the
 * events that are ready without waiting. */
void fz_driver_peek(struct fz_carrier *c);
/* fork child: a fresh epoll instance and an empty timer wheel. */
void fz_driver_after_fork(void);
/* Arm/disarm a timer; the driver is woken if the new deadline is earlier
 * than the one it sleeps towards.  Any context; c is the carrier whose
 * fiber calls, which shows the monitor when it waits for the wheel's lock
 * (NULL: none). */
void fz_timer_arm(struct fz_timer *t, struct fz_carrier *c);
void fz_timer_disarm(struct fz_timer *t, struct fz_carrier *c);
/* Cheap test (one clock read) whether a timer is due. */
bool fz_timers_due(void);
/* For stats: timers armed now. */
uint64_t fz_driver_timers_pending(void);
/* The earliest timer's deadline, UINT64_MAX if none. */
uint64_t fz_driver_next_deadline(void);
/* Fire due timers; woken fibers go to c's run queue (c may be NULL). */
void fz_timers_fire(struct fz_carrier *c);

/* The driver role: at most one carrier at a time. */
bool fz_driver_acquire(void);
void fz_driver_release(void);
/* Holder only: wait for fd events or the next timer (block) or just poll,
 * and make the woken fibers runnable on c. */
void fz_driver_poll(struct fz_carrier *c, bool block);
/* Wake the driver if it sleeps (a fiber became runnable and only the
 * driver's carrier is idle). */
void fz_driver_wake(void);
bool fz_driver_sleeping(void);

/* The epoll instance, for the reactor (runtime/reactor.c). */
int fz_driver_epfd(void);

#endif
