/* Two threads bounce a token through two semaphores: every round trip is
 * two sem_post wake-ups and two sem_wait blocks.  Also the uncontended
 * cost of a sem_post + sem_wait pair.  Prints metric<TAB>value<TAB>unit.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>

#define ROUND_TRIPS 50000
#define PAIRS 2000000

static sem_t ping, pong;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *answer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUND_TRIPS; i++) {
        sem_wait(&ping);
        sem_post(&pong);
    }
    return NULL;
}

static double us_per_round_trip(void)
{
    sem_init(&ping, 0, 0);
    sem_init(&pong, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, answer, NULL);
    double start = now_s();
    for (int i = 0; i < ROUND_TRIPS; i++) {
        sem_post(&ping);
        sem_wait(&pong);
    }
    double took = now_s() - start;
    pthread_join(t, NULL);
    return took / ROUND_TRIPS * 1e6;
}

static double ns_per_uncontended_pair(void)
{
    sem_t s;
    sem_init(&s, 0, 0);
    double start = now_s();
    for (int i = 0; i < PAIRS; i++) {
        sem_post(&s);
        sem_wait(&s);
    }
    return (now_s() - start) / PAIRS * 1e9;
}

int main(void)
{
    printf("sem_pingpong_round_trip\t%.2f\tus\n", us_per_round_trip());
    printf("sem_post_wait_uncontended\t%.1f\tns\n", ns_per_uncontended_pair());
    return 0;
}
