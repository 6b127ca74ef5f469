/* Robust mutexes whose owner dies.
 *
 * Natively the kernel walks an exiting thread's robust list and marks each
 * mutex it still holds FUTEX_OWNER_DIED; fiberized, fibers are not kernel
 * threads and the runtime must do the same.  Checked:
 *  - a thread exits holding the mutex: the next lock returns EOWNERDEAD,
 *    pthread_mutex_consistent makes it usable, the one after that is 0;
 *  - a thread blocked in lock while the owner exits gets EOWNERDEAD;
 *  - not made consistent, an unlock leaves it ENOTRECOVERABLE;
 *  - trylock and timedlock report the owner's death too;
 *  - a thread holding several robust mutexes: all are marked;
 *  - an owner that exits by pthread_exit, by cancellation, or holding a
 *    robust errorcheck mutex;
 *  - process-shared robust mutex in shared memory: a child that dies
 *    holding it leaves EOWNERDEAD for the parent, and a child thread that
 *    exits holding it leaves EOWNERDEAD for a parent blocked in lock.
 * Prints one line per check; exit status 1 if any failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int got, int want)
{
    printf("%s: %s\n", what, got == want ? "ok" : "FAIL");
    if (got != want) {
        fprintf(stderr, "%s: got %s, want %s\n", what, strerror(got), strerror(want));
        failures++;
    }
}

static void robust_init(pthread_mutex_t *m, int type, int pshared)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setpshared(&a, pshared);
    pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
}

enum how { RETURN, EXIT, CANCEL };

struct holder {
    pthread_mutex_t *locks[3];
    int n;
    enum how how;
    useconds_t hold_us;
};

static void *hold_and_die(void *arg)
{
    struct holder *h = arg;
    for (int i = 0; i < h->n; i++)
        pthread_mutex_lock(h->locks[i]);
    if (h->hold_us)
        usleep(h->hold_us);
    if (h->how == EXIT)
        pthread_exit(NULL);
    if (h->how == CANCEL) {
        for (;;)
            pause(); /* cancellation point */
    }
    return NULL;
}

static void run_holder(struct holder *h)
{
    pthread_t t;
    pthread_create(&t, NULL, hold_and_die, h);
    if (h->how == CANCEL) {
        usleep(20000);
        pthread_cancel(t);
    }
    pthread_join(t, NULL);
}

static void owner_exits(const char *name, int type, enum how how)
{
    char what[128];
    pthread_mutex_t m;
    robust_init(&m, type, PTHREAD_PROCESS_PRIVATE);
    struct holder h = {{&m}, 1, how, 0};
    run_holder(&h);
    snprintf(what, sizeof what, "%s: lock after the owner died is EOWNERDEAD", name);
    check(what, pthread_mutex_lock(&m), EOWNERDEAD);
    snprintf(what, sizeof what, "%s: consistent", name);
    check(what, pthread_mutex_consistent(&m), 0);
    check("unlock", pthread_mutex_unlock(&m), 0);
    snprintf(what, sizeof what, "%s: then lock is 0", name);
    check(what, pthread_mutex_lock(&m), 0);
    check("unlock", pthread_mutex_unlock(&m), 0);
    check("destroy", pthread_mutex_destroy(&m), 0);
}

struct blocked {
    pthread_mutex_t *m;
    int result;
};

static void *lock_it(void *arg)
{
    struct blocked *b = arg;
    b->result = pthread_mutex_lock(b->m);
    if (b->result == EOWNERDEAD)
        pthread_mutex_consistent(b->m);
    if (b->result == 0 || b->result == EOWNERDEAD)
        pthread_mutex_unlock(b->m);
    return NULL;
}

static void waiter_sees_death(void)
{
    pthread_mutex_t m;
    robust_init(&m, PTHREAD_MUTEX_NORMAL, PTHREAD_PROCESS_PRIVATE);
    struct holder h = {{&m}, 1, RETURN, 200000};
    struct blocked b = {&m, -1};
    pthread_t ht, bt;
    pthread_create(&ht, NULL, hold_and_die, &h);
    usleep(50000);
    pthread_create(&bt, NULL, lock_it, &b);
    pthread_join(ht, NULL);
    pthread_join(bt, NULL);
    check("a thread blocked in lock gets EOWNERDEAD when the owner exits", b.result, EOWNERDEAD);
    check("and the mutex is fine after its consistent+unlock", pthread_mutex_trylock(&m), 0);
    pthread_mutex_unlock(&m);
}

static void not_recovered(void)
{
    pthread_mutex_t m;
    robust_init(&m, PTHREAD_MUTEX_NORMAL, PTHREAD_PROCESS_PRIVATE);
    struct holder h = {{&m}, 1, RETURN, 0};
    run_holder(&h);
    check("trylock after the owner died is EOWNERDEAD", pthread_mutex_trylock(&m), EOWNERDEAD);
    check("unlock without consistent", pthread_mutex_unlock(&m), 0);
    check("then lock is ENOTRECOVERABLE", pthread_mutex_lock(&m), ENOTRECOVERABLE);
    check("and trylock too", pthread_mutex_trylock(&m), ENOTRECOVERABLE);

    robust_init(&m, PTHREAD_MUTEX_NORMAL, PTHREAD_PROCESS_PRIVATE);
    run_holder(&h);
    struct timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_sec += 5;
    check("timedlock after the owner died is EOWNERDEAD", pthread_mutex_timedlock(&m, &abs),
          EOWNERDEAD);
    pthread_mutex_consistent(&m);
    pthread_mutex_unlock(&m);
}

static void several_held(void)
{
    pthread_mutex_t m[3];
    for (int i = 0; i < 3; i++)
        robust_init(&m[i], PTHREAD_MUTEX_NORMAL, PTHREAD_PROCESS_PRIVATE);
    struct holder h = {{&m[0], &m[1], &m[2]}, 3, RETURN, 0};
    run_holder(&h);
    int dead = 0;
    for (int i = 0; i < 3; i++) {
        if (pthread_mutex_trylock(&m[i]) == EOWNERDEAD)
            dead++;
        pthread_mutex_consistent(&m[i]);
        pthread_mutex_unlock(&m[i]);
    }
    check("three held robust mutexes are all marked", dead == 3 ? 0 : EINVAL, 0);

    /* one released before the exit is not marked */
    pthread_mutex_t kept;
    robust_init(&kept, PTHREAD_MUTEX_NORMAL, PTHREAD_PROCESS_PRIVATE);
    pthread_mutex_lock(&kept);
    pthread_mutex_unlock(&kept);
    check("a released robust mutex locks with 0", pthread_mutex_lock(&kept), 0);
    pthread_mutex_unlock(&kept);
}

static void across_processes(void)
{
    pthread_mutex_t *m =
        mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        check("mmap", errno, 0);
        return;
    }
    robust_init(m, PTHREAD_MUTEX_NORMAL, PTHREAD_PROCESS_SHARED);
    pid_t pid = fork();
    if (pid == 0) {
        pthread_mutex_lock(m);
        _exit(0); /* the kernel marks it: the child's only thread dies */
    }
    waitpid(pid, NULL, 0);
    check("pshared: a child that died holding it leaves EOWNERDEAD", pthread_mutex_lock(m),
          EOWNERDEAD);
    pthread_mutex_consistent(m);
    pthread_mutex_unlock(m);

    int ready[2];
    if (pipe(ready) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        /* a thread of the child holds it for a while and exits; the child
         * lives on, so only the thread's own exit can mark it */
        struct holder h = {{m}, 1, RETURN, 0};
        pthread_t t;
        pthread_create(&t, NULL, hold_and_die, &h);
        pthread_join(t, NULL);
        (void)!write(ready[1], "x", 1);
        sleep(1);
        _exit(0);
    }
    char c;
    (void)!read(ready[0], &c, 1);
    check("pshared: a child's thread that exited holding it leaves EOWNERDEAD",
          pthread_mutex_lock(m), EOWNERDEAD);
    pthread_mutex_consistent(m);
    pthread_mutex_unlock(m);
    waitpid(pid, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    munmap(m, sizeof *m);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    owner_exits("returned", PTHREAD_MUTEX_NORMAL, RETURN);
    owner_exits("pthread_exit", PTHREAD_MUTEX_NORMAL, EXIT);
    owner_exits("cancelled", PTHREAD_MUTEX_NORMAL, CANCEL);
    owner_exits("errorcheck", PTHREAD_MUTEX_ERRORCHECK, RETURN);
    owner_exits("recursive", PTHREAD_MUTEX_RECURSIVE, RETURN);
    waiter_sees_death();
    not_recovered();
    several_held();
    across_processes();
    printf("%s\n", failures ? "FAILED" : "done");
    return failures ? 1 : 0;
}
