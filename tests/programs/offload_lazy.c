/* Whether libffi is in the process: at start, after a thread's plain
 * calls, and after a call the runtime offloads to its pool (getaddrinfo).
 *
 * Fiberized on glibc, libffi is loaded by the first offloaded call and not
 * before (syscalls/offload_glibc.c): a process that never makes one does
 * not pay for loading it.  Natively it is never there.
 */
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int libffi_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "/libffi.so"))
            found = 1;
    fclose(f);
    return found;
}

static void *plain(void *arg)
{
    (void)arg;
    usleep(1000);
    return NULL;
}

static void *lookup(void *arg)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_flags = AI_NUMERICHOST;
    *(int *)arg = getaddrinfo("127.0.0.1", "80", &hints, &res);
    if (*(int *)arg == 0)
        freeaddrinfo(res);
    return NULL;
}

int main(void)
{
    printf("at start: %d\n", libffi_mapped());
    pthread_t t;
    pthread_create(&t, NULL, plain, NULL);
    pthread_join(t, NULL);
    printf("after a thread's plain calls: %d\n", libffi_mapped());
    int rc = -1;
    pthread_create(&t, NULL, lookup, &rc);
    pthread_join(t, NULL);
    printf("getaddrinfo: %d\n", rc);
    printf("after an offloaded call: %d\n", libffi_mapped());
    return 0;
}
