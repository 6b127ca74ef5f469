// keys: thread-specific data.  200 threads keep a heap value under a key
// across sleeps and yields; destructors run once per non-NULL value, again
// after a destructor re-sets its value (up to PTHREAD_DESTRUCTOR_ITERATIONS
// rounds), never for NULL values or deleted keys; a new key reads NULL.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 200
#define NRESET 10 // threads 0..9 use the re-set-once key
#define NALWAYS 5 // threads 10..14 use the always-re-set key
#define MAGIC 0x5eed1234u

struct value {
    long id;
    unsigned magic;
};

static pthread_key_t key_main, key_null, key_reset, key_always, key_del;
static atomic_int main_calls, null_calls, reset_calls, always_calls, del_calls;
static atomic_int bad_values, mismatches; // mismatches: any failed check
static atomic_int del_set, del_deleted;
static int always_token;

static void main_dtor(void *p)
{
    struct value *v = p;
    if (v->magic != MAGIC)
        atomic_fetch_add(&bad_values, 1);
    v->magic = 0;
    free(v);
    atomic_fetch_add(&main_calls, 1);
}

static void null_dtor(void *p)
{
    atomic_fetch_add(&null_calls, 1);
}

// The value counts down: re-set while it is positive, so called twice.
static void reset_dtor(void *p)
{
    intptr_t left = (intptr_t)p;
    atomic_fetch_add(&reset_calls, 1);
    if (left > 1)
        pthread_setspecific(key_reset, (void *)(left - 1));
}

static void always_dtor(void *p)
{
    atomic_fetch_add(&always_calls, 1);
    pthread_setspecific(key_always, &always_token);
}

static void del_dtor(void *p)
{
    atomic_fetch_add(&del_calls, 1);
}

static void expect_value(const struct value *v, long id)
{
    const struct value *got = pthread_getspecific(key_main);
    if (got != v || got->id != id || got->magic != MAGIC)
        atomic_fetch_add(&mismatches, 1);
}

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    struct value *v = malloc(sizeof *v);
    v->id = id;
    v->magic = MAGIC;
    if (pthread_getspecific(key_main) != NULL || pthread_getspecific(key_null) != NULL)
        atomic_fetch_add(&mismatches, 1); // a new thread starts with NULL everywhere
    pthread_setspecific(key_main, v);
    pthread_setspecific(key_null, v);
    pthread_setspecific(key_null, NULL);
    if (id < NRESET)
        pthread_setspecific(key_reset, (void *)(intptr_t)2);
    else if (id < NRESET + NALWAYS)
        pthread_setspecific(key_always, &always_token);
    for (int round = 0; round < 3; round++) {
        usleep(1000 + 500 * (id % 10));
        expect_value(v, id);
        sched_yield();
        expect_value(v, id);
    }
    if (id % 2)
        pthread_exit(NULL); // destructors run on both ways out
    return NULL;
}

static void *del_worker(void *arg)
{
    pthread_setspecific(key_del, arg);
    atomic_store(&del_set, 1);
    while (!atomic_load(&del_deleted))
        usleep(1000);
    return NULL;
}

static void *reads_null(void *arg)
{
    pthread_key_t *key = arg;
    return pthread_getspecific(*key);
}

static void check(int err, const char *what)
{
    if (err) {
        fprintf(stderr, "%s: %s\n", what, strerror(err));
        exit(1);
    }
}

static void run_workers(void)
{
    pthread_t tids[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        check(pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i), "pthread_create");
    for (int i = 0; i < NTHREADS; i++)
        check(pthread_join(tids[i], NULL), "pthread_join");
}

// A key deleted while a thread holds a value: its destructor must not run,
// and a key created afterwards must read NULL everywhere.
static void delete_test(void)
{
    pthread_t tid;
    void *got = &tid;
    pthread_key_t fresh;
    check(pthread_key_create(&key_del, del_dtor), "pthread_key_create");
    pthread_setspecific(key_del, &del_calls); // main's own value
    check(pthread_create(&tid, NULL, del_worker, &always_token), "pthread_create");
    while (!atomic_load(&del_set))
        usleep(1000);
    check(pthread_key_delete(key_del), "pthread_key_delete");
    int again = pthread_key_delete(key_del);
    if (again != EINVAL)
        atomic_fetch_add(&mismatches, 1);
    printf("deleting the key again: %s\n", again == EINVAL ? "EINVAL" : "not EINVAL");
    atomic_store(&del_deleted, 1);
    check(pthread_join(tid, NULL), "pthread_join");
    printf("destructor calls for the deleted key: %d\n", atomic_load(&del_calls));

    check(pthread_key_create(&fresh, del_dtor), "pthread_key_create");
    check(pthread_create(&tid, NULL, reads_null, &fresh), "pthread_create");
    check(pthread_join(tid, &got), "pthread_join");
    if (pthread_getspecific(fresh) != NULL || got != NULL)
        atomic_fetch_add(&mismatches, 1);
    printf("a new key reads NULL: main %s, new thread %s\n",
           pthread_getspecific(fresh) == NULL ? "yes" : "no", got == NULL ? "yes" : "no");
    check(pthread_key_delete(fresh), "pthread_key_delete");
}

int main(void)
{
    alarm(60);
    check(pthread_key_create(&key_main, main_dtor), "pthread_key_create");
    check(pthread_key_create(&key_null, null_dtor), "pthread_key_create");
    check(pthread_key_create(&key_reset, reset_dtor), "pthread_key_create");
    check(pthread_key_create(&key_always, always_dtor), "pthread_key_create");
    run_workers();
    printf("%d threads, values lost across sleeps and yields: %d\n", NTHREADS,
           atomic_load(&mismatches));
    printf("destructor calls: %d, values found damaged: %d\n", atomic_load(&main_calls),
           atomic_load(&bad_values));
    printf("destructor calls for NULL values: %d\n", atomic_load(&null_calls));
    printf("re-set once destructor: %d calls for %d threads\n", atomic_load(&reset_calls), NRESET);
    printf("always re-set destructor: %d calls for %d threads (PTHREAD_DESTRUCTOR_ITERATIONS %d)\n",
           atomic_load(&always_calls), NALWAYS, PTHREAD_DESTRUCTOR_ITERATIONS);
    check(pthread_key_delete(key_main), "pthread_key_delete");
    check(pthread_key_delete(key_null), "pthread_key_delete");
    check(pthread_key_delete(key_reset), "pthread_key_delete");
    check(pthread_key_delete(key_always), "pthread_key_delete");
    delete_test();
    if (atomic_load(&mismatches) || atomic_load(&bad_values) || atomic_load(&null_calls) ||
        atomic_load(&main_calls) != NTHREADS || atomic_load(&reset_calls) != 2 * NRESET ||
        atomic_load(&always_calls) != NALWAYS * PTHREAD_DESTRUCTOR_ITERATIONS ||
        atomic_load(&del_calls)) {
        fprintf(stderr, "thread-specific data misbehaved\n");
        return 1;
    }
    return 0;
}
