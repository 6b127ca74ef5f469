// libc: glibc-only (the expected answer follows glibc's own rule for the main thread)
/* The main thread's stack as pthread_getattr_np reports it, against glibc's
 * rule worked out here from /proc/self/maps: the top is the page above
 * __libc_stack_end; the size is RLIMIT_STACK less the bytes between that top
 * and the end of the mapping holding __libc_stack_end, rounded down to a
 * page, and no larger than the distance from the top down to the end of the
 * mapping below.  fiberize answers from the main fiber's record, taken at
 * start-up without reading /proc/self/maps (runtime/tls_glibc.c); run under
 * several `ulimit -s` values, unlimited included, each natively and
 * fiberized.  Asked twice, from main and from another thread, whose view of
 * the main thread must be the same.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

extern void *__libc_stack_end;

struct expected {
    uintptr_t top;
    size_t size;
};

static int expected(struct expected *e)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t end = (uintptr_t)__libc_stack_end;
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0)
        return -1;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return -1;
    char line[512];
    uintptr_t below = 0;
    int found = -1;
    while (fgets(line, sizeof line, maps)) {
        unsigned long from, to;
        if (sscanf(line, "%lx-%lx", &from, &to) != 2)
            continue;
        if (from <= end && end < to) {
            e->top = (end & -page) + page;
            e->size = (size_t)((rl.rlim_cur - (to - e->top)) & -page);
            if (e->size > e->top - below)
                e->size = e->top - below;
            found = 0;
            break;
        }
        below = to;
    }
    fclose(maps);
    return found;
}

static pthread_t main_thread;

static void report(const char *who)
{
    struct expected e;
    pthread_attr_t attr;
    void *base;
    size_t size, guard;
    if (expected(&e) != 0 || pthread_getattr_np(main_thread, &attr) != 0) {
        printf("%s: cannot ask\n", who);
        return;
    }
    pthread_attr_getstack(&attr, &base, &size);
    pthread_attr_getguardsize(&attr, &guard);
    pthread_attr_destroy(&attr);
    uintptr_t top = (uintptr_t)base + size;
    printf("%s: top %s glibc's rule, size %s it, guard %zu\n", who,
           top == e.top ? "matches" : "differs from", size == e.size ? "matches" : "differs from",
           guard);
    if (top != e.top || size != e.size)
        fprintf(stderr, "%s: reported top %#lx size %zu, expected top %#lx size %zu\n", who,
                (unsigned long)top, size, (unsigned long)e.top, e.size);
}

static void *other(void *arg)
{
    report("another thread");
    return arg;
}

int main(void)
{
    main_thread = pthread_self();
    report("main");
    /* a stack of its own size: with RLIMIT_STACK in terabytes the default
     * one may not be mappable at all */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    pthread_t t;
    if (pthread_create(&t, &attr, other, NULL) == 0)
        pthread_join(t, NULL);
    else
        printf("pthread_create failed\n");
    pthread_attr_destroy(&attr);
    return 0;
}
