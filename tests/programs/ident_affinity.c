/* CPU affinity belongs to a thread.  A thread pins itself to one CPU
 * (sched_setaffinity(0) or pthread_setaffinity_np): it reads its mask back,
 * sched_getcpu() says that CPU across sleeps and yields, and threads it
 * creates inherit the mask; other threads keep the full mask, and keep it
 * after the pinned thread has exited (under fiberize the pin used to stay
 * on the carrier); the main thread sets another thread's mask with
 * pthread_setaffinity_np and reads it with pthread_getaffinity_np and
 * sched_getaffinity(its tid); reading into NULL is EFAULT, as the kernel
 * says (fiberize crashed there, and so did strace under it).  Needs two CPUs (prints "skipped"
 * otherwise).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;
static int all_count;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static int my_count(void)
{
    cpu_set_t m;
    CPU_ZERO(&m);
    sched_getaffinity(0, sizeof m, &m);
    return CPU_COUNT(&m);
}

static void nap(void)
{
    struct timespec ts = {0, 300000};
    nanosleep(&ts, NULL);
    sched_yield();
}

static atomic_int pinned_ok, pinned_cpu_bad, child_inherited, others_bad;
static atomic_int stop;

static void *child_of_pinned(void *arg)
{
    (void)arg;
    atomic_store(&child_inherited, my_count() == 1);
    return NULL;
}

static void *pinned(void *arg)
{
    int cpu = (int)(long)arg;
    cpu_set_t m;
    CPU_ZERO(&m);
    CPU_SET(cpu, &m);
    if (sched_setaffinity(0, sizeof m, &m) != 0)
        return NULL;
    atomic_store(&pinned_ok, my_count() == 1);
    for (int i = 0; i < 50; i++) {
        nap();
        if (sched_getcpu() != cpu)
            atomic_fetch_add(&pinned_cpu_bad, 1);
    }
    pthread_t c;
    pthread_create(&c, NULL, child_of_pinned, NULL);
    pthread_join(c, NULL);
    return NULL;
}

static void *free_runner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        if (my_count() != all_count)
            atomic_fetch_add(&others_bad, 1);
        nap();
    }
    return NULL;
}

static atomic_int target_tid, target_release;

static void *target(void *arg)
{
    (void)arg;
    atomic_store(&target_tid, gettid());
    while (!atomic_load(&target_release))
        nap();
    atomic_store(&target_release, my_count());
    return NULL;
}

int main(void)
{
    all_count = my_count();
    if (all_count < 2) {
        printf("skipped: one CPU\n");
        return 0;
    }
    pthread_t p, f[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&f[i], NULL, free_runner, NULL);
    pthread_create(&p, NULL, pinned, (void *)1L);
    pthread_join(p, NULL);
    report("a thread pins itself and reads its mask back", atomic_load(&pinned_ok));
    report("sched_getcpu() is its CPU across sleeps and yields", !atomic_load(&pinned_cpu_bad));
    report("a thread it creates inherits the mask", atomic_load(&child_inherited));
    for (int i = 0; i < 10; i++)
        nap();
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(f[i], NULL);
    report("other threads keep the full mask, also after it exited", !atomic_load(&others_bad));
    report("main keeps the full mask", my_count() == all_count);

    pthread_t t;
    pthread_create(&t, NULL, target, NULL);
    while (!atomic_load(&target_tid))
        nap();
    cpu_set_t m, back;
    CPU_ZERO(&m);
    CPU_SET(0, &m);
    report("pthread_setaffinity_np on another thread",
           pthread_setaffinity_np(t, sizeof m, &m) == 0);
    CPU_ZERO(&back);
    report("pthread_getaffinity_np reads it", pthread_getaffinity_np(t, sizeof back, &back) == 0 &&
                                                  CPU_COUNT(&back) == 1 && CPU_ISSET(0, &back));
    CPU_ZERO(&back);
    report("sched_getaffinity(its tid) reads it",
           sched_getaffinity(atomic_load(&target_tid), sizeof back, &back) == 0 &&
               CPU_COUNT(&back) == 1);
    atomic_store(&target_release, 1);
    pthread_join(t, NULL);
    report("the thread itself sees it", atomic_load(&target_release) == 1);
    /* strace finds the kernel's mask size so; fiberize wrote into NULL */
    cpu_set_t *volatile nowhere = NULL; /* the headers say nonnull */
    errno = 0;
    report("sched_getaffinity into NULL is EFAULT",
           sched_getaffinity(0, sizeof back, nowhere) == -1 && errno == EFAULT);
    report("pthread_getaffinity_np into NULL is EFAULT",
           pthread_getaffinity_np(pthread_self(), sizeof back, nowhere) == EFAULT);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
