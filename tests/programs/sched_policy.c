// sched_policy: a thread reads and sets its own scheduling policy and
// priority with the pthread calls, and another thread reads it.  Every
// line prints the call's result and what pthread_getschedparam then says,
// so the output is the same natively and fiberized whether or not the
// process may use a real-time policy (as root the RR lines succeed, as a
// user they fail with EPERM, both ways alike).
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

static pthread_barrier_t step;

static const char *name(int err)
{
    switch (err) {
    case 0:
        return "0";
    case EPERM:
        return "EPERM";
    case EINVAL:
        return "EINVAL";
    case ESRCH:
        return "ESRCH";
    default:
        return "other";
    }
}

static void show(const char *what, int err, pthread_t th)
{
    int policy = -1;
    struct sched_param p = {.sched_priority = -1};
    int got = pthread_getschedparam(th, &policy, &p);
    printf("%-28s -> %-6s get %s policy %d priority %d\n", what, name(err), name(got), policy,
           p.sched_priority);
}

/* The sched_* family on a tid: the same answers as the pthread one
 * natively (musl's answer ENOSYS, as natively). */
static void show_tid(const char *what, int result, pid_t tid)
{
    int err = result < 0 ? errno : 0;
    struct sched_param p = {.sched_priority = -1};
    errno = 0;
    int policy = sched_getscheduler(tid);
    int policy_err = policy < 0 ? errno : 0;
    errno = 0;
    int got = sched_getparam(tid, &p) < 0 ? errno : 0;
    printf("%-28s -> %-6s sched_get %s %s policy %d priority %d\n", what, name(err),
           name(policy_err), name(got), policy, p.sched_priority);
}

static pid_t worker_tid;

static int set(int policy, int priority)
{
    struct sched_param p = {.sched_priority = priority};
    return pthread_setschedparam(pthread_self(), policy, &p);
}

static void *child(void *arg)
{
    (void)arg;
    show("child of the RR thread", 0, pthread_self());
    set(SCHED_OTHER, 0);
    return NULL;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_t self = pthread_self();
    show("at start", 0, self);
    show("set OTHER 0", set(SCHED_OTHER, 0), self);
    show("set BATCH 0", set(SCHED_BATCH, 0), self);
    show("set OTHER 0 again", set(SCHED_OTHER, 0), self);
    show("set policy 99", set(99, 0), self);
    show("set OTHER priority 5", set(SCHED_OTHER, 5), self);
    show("set RR 5", set(SCHED_RR, 5), self);
    show("setschedprio 3", pthread_setschedprio(self, 3), self);
    show("setschedprio 500", pthread_setschedprio(self, 500), self);
    pthread_t th;
    pthread_create(&th, NULL, child, NULL);
    pthread_join(th, NULL);
    show("set OTHER 0 at the end", set(SCHED_OTHER, 0), self);
    struct sched_param p = {.sched_priority = 0};
    show_tid("sched_get on 0", 0, 0);
    show_tid("sched_setscheduler(tid, BATCH)", sched_setscheduler(gettid(), SCHED_BATCH, &p), 0);
    show("pthread_getschedparam after it", 0, self);
    show_tid("sched_setscheduler(0, OTHER)", sched_setscheduler(0, SCHED_OTHER, &p), gettid());
    p.sched_priority = 9;
    show_tid("sched_setparam(0, 9)", sched_setparam(0, &p), 0);
    worker_tid = gettid();
    pthread_barrier_wait(&step); /* main looks at this thread now */
    pthread_barrier_wait(&step);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    show("main at start", 0, pthread_self());
    pthread_barrier_init(&step, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    pthread_barrier_wait(&step);
    show("main reads the worker", 0, th);
    show_tid("main reads the worker's tid", 0, worker_tid);
    struct sched_param p = {.sched_priority = 0};
    show("main sets the worker as is", pthread_setschedparam(th, SCHED_OTHER, &p), th);
    p.sched_priority = 7;
    show("main sets it to priority 7", pthread_setschedparam(th, SCHED_OTHER, &p), th);
    pthread_barrier_wait(&step);
    pthread_join(th, NULL);
    return 0;
}
