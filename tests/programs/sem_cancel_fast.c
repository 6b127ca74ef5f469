/* sem_wait with a value to take and a cancellation pending: glibc acts on
 * the cancellation first (sem_wait is a "shall occur" cancellation point,
 * checked whether or not it would block), so the value stays untaken.
 * A fast path that takes the value first would print "sem_wait returned
 * 0" (tried, and caught by this program).  Prints what the thread got to
 * do and how it ended. */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>

static sem_t sem, ready, cancelled;

static void *victim(void *arg)
{
    (void)arg;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    sem_post(&ready);
    sem_wait(&cancelled); /* cancellation disabled: not acted on here */
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
    int values = 0;
    sem_getvalue(&sem, &values);
    printf("value before sem_wait: %d\n", values);
    int r = sem_wait(&sem);
    printf("sem_wait returned %d\n", r);
    fflush(stdout);
    pthread_testcancel();
    printf("not cancelled\n");
    return NULL;
}

int main(void)
{
    sem_init(&sem, 0, 1);
    sem_init(&ready, 0, 0);
    sem_init(&cancelled, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, victim, NULL);
    sem_wait(&ready);
    pthread_cancel(t);
    sem_post(&cancelled);
    void *result;
    pthread_join(t, &result);
    printf("thread %s\n", result == PTHREAD_CANCELED ? "cancelled" : "returned");
    return 0;
}
