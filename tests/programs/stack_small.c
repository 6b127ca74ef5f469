// stack_small: threads with explicit stack attributes.  A 64 KiB stack
// carries 40 KiB of locals; a caller-provided 256 KiB stack is the one the
// thread runs on; pthread_getattr_np reports sizes, addresses and guard size.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SMALL_STACK (64 * 1024)
#define USER_STACK (256 * 1024)
#define GUARD (64 * 1024)

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static void check(int err, const char *what)
{
    if (err) {
        fprintf(stderr, "%s: %s\n", what, strerror(err));
        exit(1);
    }
}

// The running thread's stack as pthread_getattr_np reports it.
static void own_stack(void **addr, size_t *size, size_t *guard)
{
    pthread_attr_t attr;
    check(pthread_getattr_np(pthread_self(), &attr), "pthread_getattr_np");
    check(pthread_attr_getstack(&attr, addr, size), "pthread_attr_getstack");
    check(pthread_attr_getguardsize(&attr, guard), "pthread_attr_getguardsize");
    pthread_attr_destroy(&attr);
}

static int inside(const void *p, const void *base, size_t size)
{
    return (uintptr_t)p >= (uintptr_t)base && (uintptr_t)p < (uintptr_t)base + size;
}

// Touches 40 KiB of stack; returns a checksum the caller can verify.
__attribute__((noinline)) static long use_stack(void)
{
    volatile unsigned char big[40 * 1024];
    long sum = 0;
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)i;
    for (size_t i = 0; i < sizeof big; i++)
        sum += big[i];
    return sum;
}

static void *small_thread(void *arg)
{
    int *ok = arg; // three verdicts
    int local = 0;
    void *addr;
    size_t size, guard;
    long want = 0;
    for (size_t i = 0; i < 40 * 1024; i++)
        want += (unsigned char)i;
    ok[0] = use_stack() == want;
    own_stack(&addr, &size, &guard);
    ok[1] = size >= SMALL_STACK;
    ok[2] = inside(&local, addr, size);
    return NULL;
}

static void *user_stack_thread(void *arg)
{
    int local = 0;
    void *addr;
    size_t size, guard;
    void **area = arg; // area[0]: the mapping; area[1] receives the verdict bits
    uintptr_t bits = 0;
    own_stack(&addr, &size, &guard);
    bits |= inside(&local, area[0], USER_STACK) ? 1 : 0;
    /* glibc reports the whole area; musl the part below the TLS and keys it
     * keeps at the top of a caller's stack (the reported area holds the
     * thread's locals and lies within the caller's) */
    bits |= (char *)addr >= (char *)area[0] &&
                    (char *)addr + size <= (char *)area[0] + USER_STACK &&
                    inside(&local, addr, size) && size >= USER_STACK * 3 / 4
                ? 2
                : 0;
    bits |= use_stack() > 0 ? 4 : 0;
    bits |= guard == 0 ? 8 : 0; /* glibc and musl put no guard in a caller's stack */
    area[1] = (void *)bits;
    return NULL;
}

static void *guard_thread(void *arg)
{
    void *addr;
    size_t size, guard;
    own_stack(&addr, &size, &guard);
    *(size_t *)arg = guard;
    return NULL;
}

static void small_stack_test(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    int ok[3] = {0, 0, 0};
    size_t size = 0;
    check(pthread_attr_init(&attr), "pthread_attr_init");
    check(pthread_attr_setstacksize(&attr, SMALL_STACK), "pthread_attr_setstacksize");
    check(pthread_attr_getstacksize(&attr, &size), "pthread_attr_getstacksize");
    report("64 KiB stack size kept in the attribute", size == SMALL_STACK);
    check(pthread_create(&tid, &attr, small_thread, ok), "pthread_create");
    check(pthread_join(tid, NULL), "pthread_join");
    pthread_attr_destroy(&attr);
    report("64 KiB stack holds 40 KiB of locals", ok[0]);
    report("64 KiB stack: reported size >= 64 KiB", ok[1]);
    report("64 KiB stack: a local lies inside the reported stack", ok[2]);
}

static void user_stack_test(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    void *area[2] = {NULL, NULL};
    void *got_addr;
    size_t got_size;
    area[0] = mmap(NULL, USER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area[0] == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    check(pthread_attr_init(&attr), "pthread_attr_init");
    check(pthread_attr_setstack(&attr, area[0], USER_STACK), "pthread_attr_setstack");
    check(pthread_attr_getstack(&attr, &got_addr, &got_size), "pthread_attr_getstack");
    report("user stack kept in the attribute", got_addr == area[0] && got_size == USER_STACK);
    check(pthread_create(&tid, &attr, user_stack_thread, area), "pthread_create");
    check(pthread_join(tid, NULL), "pthread_join");
    pthread_attr_destroy(&attr);
    uintptr_t bits = (uintptr_t)area[1];
    report("user stack: a local lies inside the caller's area", bits & 1);
    report("user stack: pthread_getattr_np reports (most of) the caller's area", bits & 2);
    report("user stack holds 40 KiB of locals", bits & 4);
    report("user stack: pthread_getattr_np reports no guard", bits & 8);
    munmap(area[0], USER_STACK);
}

static void guard_test(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    size_t set = 0, seen = 0;
    check(pthread_attr_init(&attr), "pthread_attr_init");
    check(pthread_attr_setguardsize(&attr, GUARD), "pthread_attr_setguardsize");
    check(pthread_attr_getguardsize(&attr, &set), "pthread_attr_getguardsize");
    report("64 KiB guard size kept in the attribute", set == GUARD);
    check(pthread_create(&tid, &attr, guard_thread, &seen), "pthread_create");
    check(pthread_join(tid, NULL), "pthread_join");
    pthread_attr_destroy(&attr);
    report("64 KiB guard size reported by pthread_getattr_np", seen == GUARD);
}

int main(void)
{
    alarm(60);
    small_stack_test();
    user_stack_test();
    guard_test();
    if (failures) {
        fprintf(stderr, "%d stack check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
