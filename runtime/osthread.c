/* The runtime's own OS threads: how they start, and what a fork child
 * keeps of them.
 *
 * Carriers (spares included) and the monitor live until the program is one
 * thread again and forks or enters a namespace (sched.c, fz_sched_shrink):
 * a spare that retires sleeps, and only that shrinking ends them.  A fork child has none of them;
 * it builds its runtime afresh (sched.c, fz_sched_after_fork).  On stacks
 * from libc, the child would still share with the parent every page those
 * threads touched, copy-on-write, and pay for it at every fork:
 *  - the parent's carriers and monitor write their stacks again right
 *    after the fork, and each first write copies a page;
 *  - glibc 2.36's fork child marks every other thread's descriptor on
 *    its list of libc stacks as free (reclaim_stacks), and that
 *    descriptor sits at the top of the thread's stack: one more copy per
 *    thread, in the child.
 * A copied page cost 20 us on a PVM guest, and with 50 threads forking the
 * monitor had started 48 spares, so each child copied 44 pages more than
 * natively (make bench's fork rows ran 0.75x native there).
 *
 * So these threads run on stacks mapped here, which libc never puts on
 * that list nor reuses, and the part of each stack below the thread's
 * first frame is wiped in fork children (MADV_WIPEONFORK): the parent
 * keeps those pages to itself, and the child has zero pages there, which
 * nothing reads.  The top of the stack, where libc put the thread's
 * descriptor and TLS, is copied as before: glibc 2.41's and musl's fork
 * children walk every other thread's descriptor (to reset its getrandom
 * state, to mark it dead), and glibc unlinks the forking fiber's TCB from
 * beside them (tls_glibc.c links fibers' TCBs into glibc's list of user
 * stacks).  Not MADV_DONTFORK, for the same reason: a stray write there
 * would kill the child rather than land on a zero page.  Nothing of the
 * child's runtime reads the parent's carriers' stacks or TCBs; it runs on
 * the forking fiber's.  Such a stack is unmapped only when its thread is
 * joined (fz_os_thread_join_lasting: the runtime shrinking back to one OS
 * thread, sched.c); in a fork child it is left behind with the rest of
 * the parent's runtime (sched.c), costing address space only.
 *
 * Threads that do exit (pool threads, the observer) keep libc's stacks,
 * which libc frees and caches.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include "runtime/fiber.h"
#include "runtime/sys.h"
#include "runtime/tls.h"

int (*fz_os_thread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
int (*fz_os_thread_join)(pthread_t, void **);
int (*fz_os_thread_detach)(pthread_t);

int fz_os_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int r = fz_os_thread_create(t, attr, fn, arg);
    fz_tls_threads_started();
    return r;
}

/* What the new thread needs to know, left at the lowest address of its
 * stack (which it reaches last, if ever): where it lies is where the stack
 * begins. */
struct lasting_start {
    void *(*fn)(void *);
    void *arg;
    size_t page;
    atomic_uint marked; /* 1 once the thread has marked its stack */
    pid_t tid;          /* the thread's, for fz_os_thread_wait_gone */
    void *map;          /* the whole mapping, guards included: */
    size_t len;         /* fz_os_thread_join_lasting unmaps it */
};

static void *lasting_main(void *p)
{
    struct lasting_start *start = p;
    struct lasting_start s = *start;
    /* Below this frame is only stack to come; libc's descriptor and TLS
     * are above it, on this page or higher. */
    uintptr_t first = (uintptr_t)__builtin_frame_address(0) & ~(uintptr_t)(s.page - 1);
    uintptr_t low = (uintptr_t)start;
    if (first > low) /* fails only on a kernel without it */
        madvise(start, first - low, MADV_WIPEONFORK);
    start->tid = (pid_t)fz_sys0(SYS_gettid);
    atomic_store(&start->marked, 1);
    fz_futex_wake(&start->marked, 1);
    /* The thread's own frames go below that page, into the wiped part: the
     * page this frame shares with libc's descriptor is copied in fork
     * children, and a frame the thread kept writing there would make the
     * parent copy it back after every fork (one 20 us fault each on a
     * machine where copies are dear). */
    char *below = __builtin_alloca((uintptr_t)__builtin_frame_address(0) - first + 64);
    s.fn(s.arg);
    __asm__ volatile("" : : "r"(below) : "memory"); /* the gap lives until here */
    return start;                                   /* for the joiner, which unmaps the stack */
}

int fz_os_thread_start_lasting(pthread_t *t, void *(*fn)(void *), void *arg)
{
    /* libc's own default size and guard for a new thread (RLIMIT_STACK
     * with glibc, 128 KiB with musl), as before these stacks were ours */
    pthread_attr_t attr;
    size_t size = 0, guard = 0;
    int r = pthread_attr_init(&attr);
    if (r != 0)
        return r;
    pthread_attr_getstacksize(&attr, &size);
    pthread_attr_getguardsize(&attr, &guard);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t least = (size_t)PTHREAD_STACK_MIN;
    size = fz_round_up(size < least ? least : size, page);
    guard = fz_round_up(guard, page);
    /* One PROT_NONE page above the stack too: the kernel would otherwise
     * merge the stack's top with a fiber-stack mapping above it, and
     * scripts/fiberize-gdb.py finds those by their unreadable first page. */
    size_t len = guard + size + page;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        pthread_attr_destroy(&attr);
        return EAGAIN; /* what pthread_create says when memory runs out */
    }
    /* Either fails only when the process is out of mappings
     * (vm.max_map_count): the thread then runs without that guard. */
    if (guard)
        mprotect(map, guard, PROT_NONE);
    mprotect(map + guard + size, page, PROT_NONE);
    struct lasting_start *start = (struct lasting_start *)(map + guard);
    *start = (struct lasting_start){fn, arg, page, 0, 0, map, len};
    r = pthread_attr_setstack(&attr, map + guard, size);
    if (r == 0)
        r = fz_os_thread_start(t, &attr, lasting_main, start);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        munmap(map, len);
        return r;
    }
    /* A fork made before the thread marked its stack would share it:
     * return once the process's mappings are what they will stay. */
    while (!atomic_load(&start->marked))
        fz_futex_wait(&start->marked, 0, NULL);
    return 0;
}

int fz_os_thread_join_lasting(pthread_t t)
{
    void *ret = NULL;
    int r = fz_os_thread_join(t, &ret);
    if (r != 0)
        return r;
    struct lasting_start *start = ret;
    pid_t tid = start->tid;
    munmap(start->map, start->len); /* libc is done with it: joined */
    fz_os_thread_wait_gone(tid);
    return 0;
}

/* A join returns when the kernel clears the thread's tid, a little before
 * the thread leaves the thread group; until then the kernel refuses
 * unshare(CLONE_NEWUSER) (EINVAL) and /proc/self/stat counts it (Python's
 * fork() warns of threads).  The runtime shrinking back to one OS thread
 * waits for that: WAIT_GONE_LOOKS looks at /proc/self/task/TID at most,
 * WAIT_GONE_NAP_NS apart -- an exit under way ends within microseconds, or
 * a few milliseconds on a preempted CPU. */
#define WAIT_GONE_LOOKS 2000u
#define WAIT_GONE_NAP_NS 50000l

void fz_os_thread_wait_gone(pid_t tid)
{
    char path[40];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    for (unsigned look = 0; look < WAIT_GONE_LOOKS; look++) {
        if (fz_sys4(SYS_faccessat, AT_FDCWD, path, F_OK, 0) != 0)
            return; /* ENOENT: gone (any other error: cannot tell, do not wait) */
        struct timespec nap = {0, WAIT_GONE_NAP_NS};
        fz_sys2(SYS_nanosleep, &nap, NULL);
    }
}
