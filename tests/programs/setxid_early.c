/* set*id before the program starts any thread (memcached calls setgroups
 * first thing): under fiberize the runtime's own threads already exist, so
 * glibc broadcasts the change to them, and it must come back.  Then the
 * same after threads exist, from main and from a thread. */
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static void *change_ids(void *arg)
{
    *(int *)arg = setgid(getgid()) == 0 && setuid(getuid()) == 0;
    return NULL;
}

int main(void)
{
    alarm(20);
    gid_t g = getgid();
    int early = setgid(getgid()) == 0 && setegid(getegid()) == 0;
    if (getuid() == 0)
        early = early && setgroups(1, &g) == 0;
    printf("set*id before any thread: %s\n", early ? "ok" : "FAIL");
    int from_thread = 0;
    pthread_t t;
    pthread_create(&t, NULL, change_ids, &from_thread);
    pthread_join(t, NULL);
    printf("set*id from a thread: %s\n", from_thread ? "ok" : "FAIL");
    int from_main = 0;
    change_ids(&from_main);
    printf("set*id from main after threads: %s\n", from_main ? "ok" : "FAIL");
    return !(early && from_thread && from_main);
}
