// tls_setxid: setgid from a thread that slept, then setuid from the main
// thread after it slept too, while other threads spin, sleep and yield.  In a
// threaded process glibc applies the change to every OS thread by signalling
// each one and waiting for its handler (which finds its thread through the
// thread pointer), so this must neither hang nor miss an OS thread -- also
// when the main thread has moved off the OS thread it started on (natively
// it never does; the loop before setuid then just sleeps 200 times).  Run as
// root, it switches to uid/gid 65534 and then reads every task's Uid/Gid
// lines in /proc/self/task; otherwise it sets the ids it already has and
// checks the calls return.
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BUSY 6

static atomic_int stop;

// Keeps every CPU busy and sleeps now and then, so threads move around.
static void *busy(void *arg)
{
    for (int round = 0; !atomic_load(&stop); round++) {
        for (volatile int i = 0; i < 20000; i++)
            ;
        if (round % 4 == 0)
            usleep(100);
        else
            sched_yield();
    }
    return arg;
}

// Tasks whose real, effective, saved and fs uid (gid) are not all `want` --
// only the effective one if `effective_only` -- or whose status could not
// be read.
static int tasks_not_on(const char *field, unsigned want, int effective_only)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int wrong = d == NULL;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        int seen = 0;
        while (f && fgets(line, sizeof line, f)) {
            unsigned a, b, c, d4;
            if (strncmp(line, field, strlen(field)) == 0 &&
                sscanf(line + strlen(field), "%u %u %u %u", &a, &b, &c, &d4) == 4) {
                seen = 1;
                wrong +=
                    effective_only ? b != want : a != want || b != want || c != want || d4 != want;
            }
        }
        wrong += !seen;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return wrong;
}

static int root;

static void *change_gid(void *arg)
{
    (void)arg;
    usleep(3000);
    sched_yield();
    return (void *)(long)setgid(root ? 65534 : getgid());
}

int main(void)
{
    alarm(20); // a hang in the broadcast ends here
    pthread_t t[BUSY + 1];
    for (int i = 0; i < BUSY; i++)
        pthread_create(&t[i], NULL, busy, NULL);
    root = geteuid() == 0;
    unsigned uid = root ? 65534 : getuid(), gid = root ? 65534 : getgid();
    void *g;
    pthread_create(&t[BUSY], NULL, change_gid, NULL);
    pthread_join(t[BUSY], &g);
    // Toggle the effective uid from main, each time after main slept until
    // it moved (under fiberize; natively it never does).
    int toggle_errors = 0;
    for (int round = 0; round < 10; round++) {
        long first_os_thread = syscall(SYS_gettid);
        for (int i = 0; i < 100 && syscall(SYS_gettid) == first_os_thread; i++)
            usleep(200);
        unsigned euid = geteuid(), other = root ? 65534 : euid;
        toggle_errors += seteuid(other) != 0 || tasks_not_on("Uid:", other, 1) != 0;
        usleep(300);
        toggle_errors += seteuid(euid) != 0 || tasks_not_on("Uid:", euid, 1) != 0;
    }
    printf("seteuid there and back from main 10 times: errors %d\n", toggle_errors);
    int u = setuid(uid);
    usleep(1000); // and the ids stay changed after a switch
    int wrong_uid = tasks_not_on("Uid:", uid, 0), wrong_gid = tasks_not_on("Gid:", gid, 0);
    printf("setgid %d, setuid %d, tasks with another uid %d, gid %d\n", (int)(long)g, u, wrong_uid,
           wrong_gid);
    atomic_store(&stop, 1);
    for (int i = 0; i < BUSY; i++)
        pthread_join(t[i], NULL);
    return g || u || wrong_uid || wrong_gid || toggle_errors;
}
