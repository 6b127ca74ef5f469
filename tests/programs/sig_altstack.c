/* sigaltstack belongs to a thread, as Rust's standard library uses it: each
 * thread maps an alternate stack, enables it, works (sleeps, yields: under
 * fiberize it migrates), then disables and unmaps it at exit.
 *
 * 1. While 16 such threads come and go, SA_ONSTACK handlers run for
 *    process-directed signals and for signals sent to each thread: a
 *    handler on a thread with an alternate stack runs on that thread's own
 *    stack (never another's, never an unmapped one: that was a SIGSEGV), and
 *    sigaltstack inside it says SS_ONSTACK.
 * 2. A thread that never set one sees SS_DISABLE, whatever others did.
 * 3. What a thread set is what it reads back, after sleeps and yields.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define THREADS 16
#define ALT_SIZE (64 * 1024)

static int failures;

static void report(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static __thread char *my_alt; /* this thread's alternate stack, or NULL */
static atomic_int on_own, on_wrong, onstack_flag_bad, handled, readback_bad, disabled_bad;
static atomic_int stop;

static void on_usr1(int sig)
{
    (void)sig;
    char local;
    stack_t now;
    sigaltstack(NULL, &now);
    if (my_alt) {
        if (&local >= my_alt && &local < my_alt + ALT_SIZE)
            atomic_fetch_add(&on_own, 1);
        else
            atomic_fetch_add(&on_wrong, 1);
        if (!(now.ss_flags & SS_ONSTACK))
            atomic_fetch_add(&onstack_flag_bad, 1);
    }
    atomic_fetch_add(&handled, 1);
}

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void *rust_like(void *arg)
{
    (void)arg;
    char *alt = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0}, back;
    sigaltstack(&ss, NULL);
    my_alt = alt;
    for (int i = 0; i < 30; i++) {
        nap_us(200);
        sched_yield();
        sigaltstack(NULL, &back);
        if (back.ss_sp != alt || back.ss_size != ALT_SIZE || (back.ss_flags & SS_DISABLE))
            atomic_fetch_add(&readback_bad, 1);
        pthread_kill(pthread_self(), SIGUSR1);
    }
    /* thread exit as Rust does it */
    stack_t off = {.ss_flags = SS_DISABLE};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    my_alt = NULL;
    sigaltstack(&off, NULL);
    munmap(alt, ALT_SIZE);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return NULL;
}

static void *plain(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        stack_t now;
        sigaltstack(NULL, &now);
        if (!(now.ss_flags & SS_DISABLE))
            atomic_fetch_add(&disabled_bad, 1);
        nap_us(300);
    }
    return NULL;
}

static void *sender(void *arg)
{
    pthread_t *targets = arg;
    while (!atomic_load(&stop)) {
        kill(getpid(), SIGUSR1);
        for (int i = 0; i < THREADS; i++)
            pthread_kill(targets[i], SIGUSR1);
        nap_us(500);
    }
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);

    pthread_t plain_thread, send_thread;
    pthread_create(&plain_thread, NULL, plain, NULL);
    static pthread_t t[THREADS];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < THREADS; i++)
            pthread_create(&t[i], NULL, rust_like, NULL);
        atomic_store(&stop, 0);
        pthread_create(&send_thread, NULL, sender, t);
        nap_us(5000);
        atomic_store(&stop, 1);
        pthread_join(send_thread, NULL);
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        /* the threads are gone and their stacks unmapped: signals go on */
        for (int i = 0; i < 50; i++) {
            kill(getpid(), SIGUSR1);
            nap_us(100);
        }
    }
    atomic_store(&stop, 1);
    pthread_join(plain_thread, NULL);
    report("handlers ran (no crash on an unmapped alternate stack)", atomic_load(&handled) > 0);
    report("handlers of threads with one ran on their own alternate stack",
           atomic_load(&on_own) > 0 && atomic_load(&on_wrong) == 0);
    report("sigaltstack in such a handler says SS_ONSTACK", atomic_load(&onstack_flag_bad) == 0);
    report("a thread reads back the alternate stack it set", atomic_load(&readback_bad) == 0);
    report("a thread that set none sees SS_DISABLE", atomic_load(&disabled_bad) == 0);
    stack_t now;
    sigaltstack(NULL, &now);
    report("main sees SS_DISABLE", (now.ss_flags & SS_DISABLE) != 0);
    printf("%s\n", failures ? "FAILED" : "all ok");
    return failures != 0;
}
