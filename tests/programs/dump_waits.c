/* A thousand threads parked in eight known ways, and two spinning, for the
 * fiber-dump test (tests/bats/observe.bats).
 *
 *   dump_waits [SCALE [IDLE]]   SCALE divides the counts (default 1: 1,000);
 *                               IDLE more threads sleep in idle_main
 *
 * It prints what it knows it did, one line per thread:
 *   EXPECT <name> <state> <wait>
 *   FRAME <name> <function that must be in its backtrace>
 * plus "READY <pid> <port>" once every thread is about to block; then main
 * waits in accept on that loopback port (parked itself) and exits when
 * the test connects.  The
 * test sends the dump signal in between and compares the dump with these
 * lines.  Names are unique, so the dump's fibers are matched by name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static atomic_int about_to_block;
static atomic_int stop_spinning;
static int listener;
static const char *lock_path;

struct job {
    char name[16];
    int fd;
    pid_t pid;
    pthread_t target;
};

static void arrive(struct job *j)
{
    pthread_setname_np(pthread_self(), j->name);
    atomic_fetch_add(&about_to_block, 1);
}

__attribute__((noinline)) static void *reader_main(void *arg)
{
    struct job *j = arg;
    char c;
    arrive(j);
    ssize_t n = read(j->fd, &c, 1);
    (void)n;
    return NULL;
}

__attribute__((noinline)) static void *acceptor_main(void *arg)
{
    arrive(arg);
    int fd = accept(listener, NULL, NULL);
    if (fd >= 0)
        close(fd);
    return NULL;
}

__attribute__((noinline)) static void *locker_main(void *arg)
{
    arrive(arg);
    pthread_mutex_lock(&held);
    pthread_mutex_unlock(&held);
    return NULL;
}

__attribute__((noinline)) static void *waiter_main(void *arg)
{
    arrive(arg);
    pthread_mutex_lock(&cond_mutex);
    pthread_cond_wait(&cond, &cond_mutex);
    pthread_mutex_unlock(&cond_mutex);
    return NULL;
}

__attribute__((noinline)) static void *sleeper_main(void *arg)
{
    arrive(arg);
    struct timespec ts = {1000, 0};
    nanosleep(&ts, NULL);
    return NULL;
}

__attribute__((noinline)) static void *idle_main(void *arg)
{
    arrive(arg);
    struct timespec ts = {1000, 0};
    nanosleep(&ts, NULL);
    return NULL;
}

__attribute__((noinline)) static void *reaper_main(void *arg)
{
    struct job *j = arg;
    arrive(j);
    waitpid(j->pid, NULL, 0);
    return NULL;
}

__attribute__((noinline)) static void *joiner_main(void *arg)
{
    struct job *j = arg;
    arrive(j);
    pthread_join(j->target, NULL);
    return NULL;
}

__attribute__((noinline)) static void *flocker_main(void *arg)
{
    struct job *j = arg;
    arrive(j);
    flock(j->fd, LOCK_EX);
    return NULL;
}

__attribute__((noinline)) static unsigned long spin_loop(void)
{
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop_spinning, memory_order_relaxed))
        n++;
    return n;
}

__attribute__((noinline)) static void *spinner_main(void *arg)
{
    arrive(arg);
    spin_loop();
    return NULL;
}

static void start(void *(*fn)(void *), struct job *j, pthread_t *out)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    int err = pthread_create(out, &a, fn, j);
    pthread_attr_destroy(&a);
    if (err) {
        fprintf(stderr, "pthread_create: %s\n", strerror(err));
        exit(1);
    }
}

static int tcp_listener(unsigned short *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (void *)&a, sizeof a) || listen(fd, 4096) ||
        getsockname(fd, (void *)&a, &len)) {
        perror("listener");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static unsigned short port_of(int fd, bool peer)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (peer)
        getpeername(fd, (void *)&a, &len);
    else
        getsockname(fd, (void *)&a, &len);
    return ntohs(a.sin_port);
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    int readers = 200 / scale, acceptors = 100 / scale, lockers = 200 / scale,
        waiters = 200 / scale, sleepers = 200 / scale, reapers = 20 / scale, joiners = 60 / scale,
        flockers = 20 / scale, spinners = 2;
    int idle = argc > 2 ? atoi(argv[2]) : 0;
    int total = readers + acceptors + lockers + waiters + sleepers + reapers + joiners + flockers +
                spinners + idle;
    struct job *jobs = calloc((size_t)total, sizeof *jobs);
    pthread_t *threads = calloc((size_t)total, sizeof *threads);
    pid_t *children = calloc((size_t)reapers, sizeof *children);
    int k = 0;
    setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    pthread_setname_np(pthread_self(), "dumpmain");

    /* children first: forking is cheaper with one thread */
    for (int i = 0; i < reapers; i++) {
        children[i] = fork();
        if (children[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan outlives a killed test */
            if (getppid() == 1)
                _exit(0);
            for (;;)
                pause();
        }
    }
    pthread_mutex_lock(&held);

    unsigned short data_port, accept_port;
    int data_listener = tcp_listener(&data_port);
    listener = tcp_listener(&accept_port);
    for (int i = 0; i < readers; i++, k++) {
        struct job *j = &jobs[k];
        int c = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(data_port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (c < 0 || connect(c, (void *)&a, sizeof a) != 0) {
            perror("connect");
            return 1;
        }
        int s = accept(data_listener, NULL, NULL);
        snprintf(j->name, sizeof j->name, "rd-%d", i);
        j->fd = s;
        printf("EXPECT %s parked read(fd %d, socket 127.0.0.1:%u<-127.0.0.1:%u)\n", j->name, s,
               port_of(s, false), port_of(s, true));
        printf("FRAME %s reader_main\n", j->name);
        start(reader_main, j, &threads[k]);
    }
    for (int i = 0; i < acceptors; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "acc-%d", i);
        printf("EXPECT %s parked accept(fd %d, listening socket 127.0.0.1:%u)\n", j->name, listener,
               accept_port);
        printf("FRAME %s acceptor_main\n", j->name);
        start(acceptor_main, j, &threads[k]);
    }
    for (int i = 0; i < lockers; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "lock-%d", i);
        printf("EXPECT %s parked pthread_mutex_lock(%p, held by @dumpmain)\n", j->name,
               (void *)&held);
        printf("FRAME %s locker_main\n", j->name);
        start(locker_main, j, &threads[k]);
    }
    for (int i = 0; i < waiters; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "cond-%d", i);
        printf("EXPECT %s parked pthread_cond_wait(%p)\n", j->name, (void *)&cond);
        printf("FRAME %s waiter_main\n", j->name);
        start(waiter_main, j, &threads[k]);
    }
    int first_sleeper = k;
    for (int i = 0; i < sleepers; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "sleep-%d", i);
        printf("EXPECT %s parked nanosleep, ~s left\n", j->name);
        printf("FRAME %s sleeper_main\n", j->name);
        start(sleeper_main, j, &threads[k]);
    }
    for (int i = 0; i < reapers; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "reap-%d", i);
        j->pid = children[i];
        printf("EXPECT %s parked waitpid(%d)\n", j->name, (int)children[i]);
        printf("FRAME %s reaper_main\n", j->name);
        start(reaper_main, j, &threads[k]);
    }
    for (int i = 0; i < joiners; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "join-%d", i);
        j->target = threads[first_sleeper + i];
        printf("EXPECT %s parked join(@%s)\n", j->name, jobs[first_sleeper + i].name);
        printf("FRAME %s joiner_main\n", j->name);
        start(joiner_main, j, &threads[k]);
    }
    char path[] = "/tmp/dump_waits.XXXXXX";
    int lock_fd = mkstemp(path);
    lock_path = path;
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
        perror("flock");
        return 1;
    }
    for (int i = 0; i < flockers; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "flock-%d", i);
        j->fd = open(path, O_RDWR);
        printf("EXPECT %s parked pool: flock(~\n", j->name);
        printf("FRAME %s flocker_main\n", j->name);
        start(flocker_main, j, &threads[k]);
    }
    for (int i = 0; i < idle; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "idle-%d", i);
        printf("EXPECT %s parked nanosleep, ~s left\n", j->name);
        printf("FRAME %s idle_main\n", j->name);
        start(idle_main, j, &threads[k]);
    }
    for (int i = 0; i < spinners; i++, k++) {
        struct job *j = &jobs[k];
        snprintf(j->name, sizeof j->name, "spin-%d", i);
        printf("EXPECT %s running\n", j->name);
        printf("FRAME %s spin_loop\n", j->name);
        printf("FRAME %s spinner_main\n", j->name);
        start(spinner_main, j, &threads[k]);
    }
    unsigned short ctl_port;
    int ctl = tcp_listener(&ctl_port);
    printf("EXPECT dumpmain parked accept(fd %d, listening socket 127.0.0.1:%u)\n", ctl, ctl_port);
    printf("FRAME dumpmain main\n");
    printf("COUNT %d\n", total + 1);
    while (atomic_load(&about_to_block) < total) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* from "about to" to parked: give them time to get there */
    struct timespec settle = {0, 500 * 1000 * 1000};
    nanosleep(&settle, NULL);
    printf("READY %d %u\n", (int)getpid(), ctl_port);
    fflush(stdout);

    /* the test connects when it has its dump */
    int done = accept(ctl, NULL, NULL);
    (void)done;
    atomic_store(&stop_spinning, 1);
    for (int i = 0; i < reapers; i++)
        kill(children[i], SIGKILL);
    unlink(path);
    fflush(stdout);
    _exit(0);
}
