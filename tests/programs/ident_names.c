/* Thread names belong to threads: prctl(PR_SET_NAME) names the calling
 * thread and PR_GET_NAME reads it back after sleeps and yields (under
 * fiberize: migrations); pthread_getname_np of that thread agrees; a new
 * thread starts with its creator's name; pthread_setname_np on another
 * thread is what that thread then reads with PR_GET_NAME; the main thread's
 * name is the process's (/proc/self/comm).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static atomic_int bad_readback, bad_inherit, named, go;
static char seen_after_setname[THREADS][16];

static void *worker(void *arg)
{
    int i = (int)(long)arg;
    char name[16], back[16];
    prctl(PR_GET_NAME, back);
    if (strcmp(back, "parent-name") != 0)
        atomic_fetch_add(&bad_inherit, 1);
    snprintf(name, sizeof name, "worker-%d", i);
    prctl(PR_SET_NAME, name);
    for (int k = 0; k < 20; k++) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        sched_yield();
        prctl(PR_GET_NAME, back);
        if (strcmp(back, name) != 0)
            atomic_fetch_add(&bad_readback, 1);
    }
    atomic_fetch_add(&named, 1);
    while (!atomic_load(&go)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    prctl(PR_GET_NAME, seen_after_setname[i]);
    return NULL;
}

static void comm(char *buf)
{
    FILE *f = fopen("/proc/self/comm", "r");
    buf[0] = 0;
    if (f) {
        if (fgets(buf, 32, f))
            buf[strcspn(buf, "\n")] = 0;
        fclose(f);
    }
}

int main(void)
{
    char name[32];
    prctl(PR_GET_NAME, name);
    report("main starts with the program's name", strcmp(name, "ident_names") == 0);
    prctl(PR_SET_NAME, "parent-name");
    comm(name);
    report("main's name is the process's (/proc/self/comm)", strcmp(name, "parent-name") == 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    while (atomic_load(&named) < THREADS) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int agree = 1;
    for (int i = 0; i < THREADS; i++) {
        char want[16], got[16];
        snprintf(want, sizeof want, "worker-%d", i);
        agree &= pthread_getname_np(t[i], got, sizeof got) == 0 && strcmp(got, want) == 0;
        snprintf(want, sizeof want, "renamed-%d", i);
        pthread_setname_np(t[i], want);
    }
    atomic_store(&go, 1);
    int renamed = 1;
    for (int i = 0; i < THREADS; i++) {
        char want[16];
        pthread_join(t[i], NULL);
        snprintf(want, sizeof want, "renamed-%d", i);
        renamed &= strcmp(seen_after_setname[i], want) == 0;
    }
    report("threads start with their creator's name", !atomic_load(&bad_inherit));
    report("PR_GET_NAME reads back PR_SET_NAME across sleeps and yields",
           !atomic_load(&bad_readback));
    report("pthread_getname_np of a thread gives what it set", agree);
    report("pthread_setname_np on a thread is what it reads with PR_GET_NAME", renamed);
    prctl(PR_GET_NAME, name);
    report("main kept its own name", strcmp(name, "parent-name") == 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
