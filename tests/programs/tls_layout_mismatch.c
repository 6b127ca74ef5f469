// tls_layout_mismatch: a process in which glibc's published layout and
// what glibc did to its threads disagree must make fiberize turn itself
// off with one line naming the field and the glibc version -- not crash,
// not run fibers on a wrong TCB layout.  The executable exports its own
// _thread_db_pthread_tid descriptor ({bits, count, offset}; dlsym with
// RTLD_DEFAULT finds the executable's before libc's) saying struct
// pthread's tid is at byte 4, inside the TCB header on every glibc.  The
// threads then run natively and print what they print natively.
// On musl, which publishes no layout, the executable's own
// __errno_location (found before libc's) puts errno outside struct
// pthread, where another musl release could have moved errno_val.
// link: -rdynamic
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

const uint32_t _thread_db_pthread_tid[3] = {32, 1, 4};

#ifndef __GLIBC__
#include <errno.h>
static int errno_elsewhere;
int *__errno_location(void)
{
    return &errno_elsewhere;
}
#endif

static __thread int mine;

static void *work(void *arg)
{
    mine = (int)(intptr_t)arg;
    return (void *)(intptr_t)(mine * 2);
}

int main(void)
{
    long sum = 0;
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, work, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (intptr_t)r;
    }
    printf("8 threads, results sum %ld\n", sum);
    return 0;
}
