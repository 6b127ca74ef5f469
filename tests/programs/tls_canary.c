// link: -fstack-protector-all
// tls_canary [N]: every function here carries a stack-protector canary, read
// from %fs:0x28 on entry and checked on return.  N threads (default 1000)
// recurse 200 deep with a local array in each frame and sleep or yield in the
// middle, so each return checks a canary written before the thread blocked
// and possibly moved to another OS thread.  A wrong thread pointer or TCB
// aborts with "stack smashing detected"; every frame's array is checked too.
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEPTH 200
#define FRAME_BYTES 48

static atomic_long bad_frames, canary_differs;
static uintptr_t main_canary;

static uintptr_t canary(void)
{
    uintptr_t c;
    __asm__ volatile("mov %%fs:0x28, %0" : "=r"(c));
    return c;
}

// Fills a frame, recurses, and checks the frame after the deeper calls,
// some of which block.  Returns a checksum of the whole chain.
static long descend(int id, int depth)
{
    volatile unsigned char frame[FRAME_BYTES];
    for (int i = 0; i < FRAME_BYTES; i++)
        frame[i] = (unsigned char)(id + depth * 7 + i);
    long below = 0;
    if (depth == DEPTH / 2)
        usleep(500 + id % 10 * 100);
    else if (depth % 50 == 0)
        sched_yield();
    if (depth < DEPTH)
        below = descend(id, depth + 1);
    if (canary() != main_canary)
        atomic_fetch_add(&canary_differs, 1);
    long sum = 0;
    for (int i = 0; i < FRAME_BYTES; i++) {
        if (frame[i] != (unsigned char)(id + depth * 7 + i)) {
            atomic_fetch_add(&bad_frames, 1);
            break;
        }
        sum += frame[i];
    }
    if (depth == DEPTH / 4)
        sched_yield(); // and once more on the way up
    return sum + below;
}

static long expected(int id)
{
    long sum = 0;
    for (int depth = 1; depth <= DEPTH; depth++)
        for (int i = 0; i < FRAME_BYTES; i++)
            sum += (unsigned char)(id + depth * 7 + i);
    return sum;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    return (void *)(intptr_t)(descend(id, 1) == expected(id));
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    pthread_t *tids = calloc(n, sizeof *tids);
    alarm(60);
    main_canary = canary();
    for (int i = 0; i < n; i++)
        if (pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "create %d failed\n", i);
            return 1;
        }
    long good = 0;
    for (int i = 0; i < n; i++) {
        void *ret;
        pthread_join(tids[i], &ret);
        good += (intptr_t)ret;
    }
    printf("%d threads x %d frames: checksums right %ld, bad frames %ld, canary differs %ld\n", n,
           DEPTH, good, atomic_load(&bad_frames), atomic_load(&canary_differs));
    return good == n && !atomic_load(&bad_frames) && !atomic_load(&canary_differs) ? 0 : 1;
}
