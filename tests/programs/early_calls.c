// link: -learlycalls
// Interposed calls made by a library constructor before libfiberize's own
// constructor ran (see lib/earlycalls.c) behave as natively; then the
// program goes on with threads as usual.
#include <pthread.h>
#include <stdio.h>

extern char early_report[];

static void *worker(void *arg)
{
    return arg;
}

int main(void)
{
    fputs(early_report, stdout);
    pthread_t t;
    void *res = NULL;
    int c = pthread_create(&t, NULL, worker, (void *)"after main");
    pthread_join(t, &res);
    printf("pthread_create in main %d: %s\n", c, (char *)res);
    return 0;
}
