/* open() takes the lowest free number, whatever the runtime does meanwhile.
 *
 * Daemons redirect a standard stream with close(0); open("/dev/null"),
 * relying on the new file taking the number just freed.  The runtime's
 * monitor reads /proc stat files of carriers whose fiber stays in the
 * kernel; an open of its own at that moment would take the number for an
 * instant and leave the program's open another one.  Here one thread
 * blocks in raw system calls (invisible to fiberize, so its carrier looks
 * stuck every few milliseconds), while main closes and reopens the lowest
 * number; after a warm-up (the monitor's first look at each carrier opens
 * its file, and main's loop gets a spare started, see runtime/monitor.c),
 * every reopen must land on the number closed for a second.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WARM_UP_MS 500
#define RUN_MS 1000
#define BLOCK_MS 4 /* above the default hand-off period (2 ms) */

static atomic_int done;

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* nanosleep by the syscall instruction itself: no interposer sees it */
static void raw_nap(long ms)
{
    struct timespec ts = {0, ms * 1000000};
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "0"((long)SYS_nanosleep), "D"(&ts), "S"(0L)
                     : "rcx", "r11", "memory");
    (void)r;
}

static void *stuck_in_kernel(void *arg)
{
    (void)arg;
    while (!atomic_load(&done)) {
        raw_nap(BLOCK_MS);
        usleep(200); /* a switch: the next nap is a new run to look at */
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, stuck_in_kernel, NULL);
    int fd = open("/dev/null", O_RDONLY);
    long rounds = 0, elsewhere = 0;
    long long start = now_ms();
    for (long long end = start + WARM_UP_MS + RUN_MS; now_ms() < end; rounds++) {
        close(fd);
        int again = open("/dev/null", O_RDONLY);
        if (again != fd && now_ms() >= start + WARM_UP_MS)
            elsewhere++;
        fd = again;
    }
    atomic_store(&done, 1);
    pthread_join(t, NULL);
    printf("reopens on another number than the one closed: %ld%s\n", elsewhere,
           rounds > 1000 ? "" : " (too few rounds)");
    return 0;
}
