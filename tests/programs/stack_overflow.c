// stack_overflow: a thread recurses without end, each frame holding a 1 KiB
// volatile buffer.  Proves that running off a thread's stack hits a guard
// and kills the process with SIGSEGV (status 139), never corrupting memory.
// With an argument N, N sleeping threads exist first, so the overflowing
// thread's stack is the (N+1)th: every stack has a guard, not just the first.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Never reached; keeps the compiler from proving the recursion infinite.
// Frames stay small (no inlining) so none can jump over a one-page guard.
static volatile long stop_depth = -1;

__attribute__((noinline)) static long recurse(long depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = (char)depth;
    if (depth == stop_depth)
        return buf[0];
    return recurse(depth + 1) + buf[depth % sizeof buf]; // not a tail call
}

static void *overflow(void *arg)
{
    long r = recurse(0);
    printf("recursion ended: %ld\n", r);
    return NULL;
}

static void *nap(void *arg)
{
    sleep(60);
    return arg;
}

int main(int argc, char **argv)
{
    pthread_t tid;
    int err;
    alarm(30);
    long sleepers = argc > 1 ? atol(argv[1]) : 0;
    for (long i = 0; i < sleepers; i++) {
        err = pthread_create(&tid, NULL, nap, NULL);
        if (err) {
            fprintf(stderr, "pthread_create %ld: %s\n", i, strerror(err));
            return 1;
        }
        pthread_detach(tid);
    }
    printf("starting a thread that overflows its stack\n");
    fflush(stdout);
    err = pthread_create(&tid, NULL, overflow, NULL);
    if (err) {
        fprintf(stderr, "pthread_create: %s\n", strerror(err));
        return 1;
    }
    pthread_join(tid, NULL);
    fprintf(stderr, "the thread survived its stack overflow\n");
    return 1;
}
