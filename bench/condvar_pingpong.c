/* Two threads hand a token back and forth through one mutex and one
 * condition variable: the cost of a wake-up that goes through a condvar.
 * Prints: condvar_pingpong_handoff <us per handoff> */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define HANDOFFS 100000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turned = PTHREAD_COND_INITIALIZER;
static long turn;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Player `me` (0 or 1) moves on even or odd turns. */
static void *player(void *arg)
{
    long me = (long)arg;
    pthread_mutex_lock(&lock);
    while (turn < HANDOFFS) {
        while (turn % 2 != me && turn < HANDOFFS)
            pthread_cond_wait(&turned, &lock);
        if (turn < HANDOFFS)
            turn++;
        pthread_cond_signal(&turned);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void)
{
    pthread_t a, b;
    double start = now();
    pthread_create(&a, NULL, player, (void *)0L);
    pthread_create(&b, NULL, player, (void *)1L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("condvar_pingpong_handoff\t%.2f\tus\n", (now() - start) * 1e6 / HANDOFFS);
    return 0;
}
