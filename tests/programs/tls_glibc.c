// tls_glibc [CHECK...]: glibc's own per-thread state is per thread, for
// threads that block and move between OS threads.  Each check prints one
// line; with no arguments all run.
//   malloc   threads allocate, block, verify and free, also blocks another
//            thread allocated (thread cache and arena per thread)
//   stdio    a FILE locked with flockfile by a thread that then sleeps makes
//            another thread's fprintf wait; ftrylockfile is recursive for the
//            owner only; 100 threads printing to one FILE keep lines whole
//   dlerror  a failed dlsym's message is the failing thread's only
//   locale   uselocale is per thread
//   getcpu   sched_getcpu (rseq or vDSO) names a CPU the process may use
//   owner    recursive, error-checking mutexes and rwlocks know their owner
//            thread while it sleeps (glibc compares thread ids)
//   fresh    a thread created after another exited starts with libc's
//            per-thread state fresh: errno, h_errno, dlerror, locale,
//            strsignal's buffer
//   jmp      setjmp, sleep or yield (maybe move), longjmp back: jmp_buf
//            pointers are mangled with a per-process guard read through the
//            thread pointer, so every thread must carry the same guard
//   fork     a thread that slept (and may have moved) forks; the child's
//            only thread keeps the forking thread's TLS, errno, pthread_self,
//            and can malloc, print and create a thread
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <locale.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_threads(int n, void *(*fn)(void *))
{
    pthread_t *t = calloc(n, sizeof *t);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "create failed\n");
            exit(1);
        }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
}

static void nap(int id)
{
    if (id % 2)
        sched_yield();
    else
        usleep(100 + id % 5 * 100);
}

/* ---- malloc ---------------------------------------------------------- */

#define M_THREADS 64
#define M_ROUNDS 200
#define M_LIVE 16
static atomic_long m_corrupt, m_allocs;
static pthread_mutex_t m_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *m_mailbox[M_THREADS]; // blocks handed to the next thread
static size_t m_mailbox_size[M_THREADS];

static unsigned char pattern(size_t size, size_t i)
{
    return (unsigned char)(size * 31 + i * 7);
}

static unsigned char *m_alloc(size_t size)
{
    unsigned char *p = malloc(size);
    for (size_t i = 0; i < size; i++)
        p[i] = pattern(size, i);
    atomic_fetch_add(&m_allocs, 1);
    return p;
}

static void m_free(unsigned char *p, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (p[i] != pattern(size, i)) {
            atomic_fetch_add(&m_corrupt, 1);
            break;
        }
    free(p);
}

static void *malloc_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    unsigned char *live[M_LIVE] = {0};
    size_t sizes[M_LIVE] = {0};
    unsigned seed = id + 1;
    for (int r = 0; r < M_ROUNDS; r++) {
        int slot = r % M_LIVE;
        if (live[slot])
            m_free(live[slot], sizes[slot]);
        seed = seed * 1103515245u + 12345u;
        sizes[slot] = 16 + (seed >> 8) % (r % 10 == 0 ? 70000 : 1000);
        live[slot] = m_alloc(sizes[slot]);
        if (r % 8 == 0) {
            // Pass a block to the next thread and free what the previous left.
            unsigned char *mine = m_alloc(200 + id), *theirs;
            size_t theirs_size, next = (id + 1) % M_THREADS;
            pthread_mutex_lock(&m_lock);
            theirs = m_mailbox[id];
            theirs_size = m_mailbox_size[id];
            m_mailbox[id] = NULL;
            if (!m_mailbox[next]) {
                m_mailbox[next] = mine;
                m_mailbox_size[next] = 200 + id;
                mine = NULL;
            }
            pthread_mutex_unlock(&m_lock);
            if (theirs)
                m_free(theirs, theirs_size);
            if (mine)
                m_free(mine, 200 + id);
        }
        nap(id + r);
    }
    for (int s = 0; s < M_LIVE; s++)
        if (live[s])
            m_free(live[s], sizes[s]);
    return NULL;
}

static int check_malloc(void)
{
    run_threads(M_THREADS, malloc_worker);
    for (int i = 0; i < M_THREADS; i++)
        if (m_mailbox[i])
            m_free(m_mailbox[i], m_mailbox_size[i]);
    long corrupt = atomic_load(&m_corrupt);
    printf("malloc: %d threads, corrupt blocks %ld\n", M_THREADS, corrupt);
    return corrupt == 0;
}

/* ---- stdio ----------------------------------------------------------- */

static FILE *s_file;
static atomic_int s_stage;
static atomic_long s_errors;

static void *stdio_owner(void *arg)
{
    (void)arg;
    flockfile(s_file);
    fputs("owner-1 ", s_file);
    atomic_store(&s_stage, 1);
    usleep(30000);                 // holding the lock while blocked
    if (ftrylockfile(s_file) != 0) // recursive for the owner
        atomic_fetch_add(&s_errors, 1);
    fputs("owner-2\n", s_file);
    funlockfile(s_file);
    while (atomic_load(&s_stage) < 2)
        usleep(1000);
    funlockfile(s_file);
    return NULL;
}

static void *stdio_other(void *arg)
{
    (void)arg;
    while (atomic_load(&s_stage) < 1)
        usleep(1000);
    if (ftrylockfile(s_file) == 0) { // held by the owner: must fail
        atomic_fetch_add(&s_errors, 1);
        funlockfile(s_file);
    }
    atomic_store(&s_stage, 2);
    fprintf(s_file, "other\n"); // waits for the owner's funlockfile
    return NULL;
}

#define S_WRITERS 100
#define S_LINES 20
static void *stdio_writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < S_LINES; i++) {
        fprintf(s_file, "writer %03d line %02d %s\n", id, i, "................................");
        nap(id + i);
    }
    return NULL;
}

static int check_stdio(void)
{
    s_file = tmpfile();
    pthread_t a, b;
    pthread_create(&a, NULL, stdio_owner, NULL);
    pthread_create(&b, NULL, stdio_other, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    char buf[256] = "";
    rewind(s_file);
    size_t got = fread(buf, 1, sizeof buf - 1, s_file);
    buf[got] = 0;
    int order_ok = strcmp(buf, "owner-1 owner-2\nother\n") == 0;
    // Whole lines from many writers.
    rewind(s_file);
    if (ftruncate(fileno(s_file), 0) != 0)
        atomic_fetch_add(&s_errors, 1);
    run_threads(S_WRITERS, stdio_writer);
    rewind(s_file);
    char line[256];
    long good = 0, bad = 0;
    size_t line_len = strlen("writer 000 line 00 ................................\n");
    while (fgets(line, sizeof line, s_file)) {
        int id, n;
        char dots[64];
        if (sscanf(line, "writer %d line %d %63s", &id, &n, dots) == 3 &&
            strlen(line) == line_len && strcmp(dots, "................................") == 0)
            good++;
        else
            bad++;
    }
    fclose(s_file);
    printf("stdio: lock order %s, trylock errors %ld, whole lines %ld of %d, torn %ld\n",
           order_ok ? "right" : "WRONG", atomic_load(&s_errors), good, S_WRITERS * S_LINES, bad);
    return order_ok && !atomic_load(&s_errors) && good == S_WRITERS * S_LINES && !bad;
}

/* ---- dlerror --------------------------------------------------------- */

#define D_PAIRS 50
static atomic_long d_errors;
static atomic_int d_failed[D_PAIRS];

static void *dlerror_worker(void *arg)
{
    int id = (int)(intptr_t)arg, pair = id / 2;
    char name[64];
    snprintf(name, sizeof name, "tls_glibc_missing_%d", id);
    if (id % 2 == 0) {
        // Fail, then block while the partner succeeds and reads its own state.
        if (dlsym(RTLD_DEFAULT, name))
            atomic_fetch_add(&d_errors, 1);
        atomic_store(&d_failed[pair], 1);
        usleep(5000);
        const char *msg = dlerror();
        if (!msg || !strstr(msg, name))
            atomic_fetch_add(&d_errors, 1);
        if (dlerror()) // reading it cleared it
            atomic_fetch_add(&d_errors, 1);
    } else {
        while (!atomic_load(&d_failed[pair]))
            usleep(500);
        if (!dlsym(RTLD_DEFAULT, "printf") || dlerror()) // nothing pending here
            atomic_fetch_add(&d_errors, 1);
        if (dlsym(RTLD_DEFAULT, name))
            atomic_fetch_add(&d_errors, 1);
        sched_yield();
        const char *msg = dlerror();
        if (!msg || !strstr(msg, name))
            atomic_fetch_add(&d_errors, 1);
    }
    return NULL;
}

static int check_dlerror(void)
{
    run_threads(2 * D_PAIRS, dlerror_worker);
    printf("dlerror: %d threads, errors %ld\n", 2 * D_PAIRS, atomic_load(&d_errors));
    return !atomic_load(&d_errors);
}

/* ---- locale ---------------------------------------------------------- */

#define L_THREADS 100
static locale_t l_utf8;
static atomic_long l_errors;

static void *locale_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (uselocale(NULL) != LC_GLOBAL_LOCALE || MB_CUR_MAX != 1)
        atomic_fetch_add(&l_errors, 1);
    if (id % 2)
        uselocale(l_utf8);
    for (int r = 0; r < 10; r++) {
        nap(id + r);
        size_t want = id % 2 ? 6 : 1;
        locale_t want_loc = id % 2 ? l_utf8 : LC_GLOBAL_LOCALE;
        if (MB_CUR_MAX != want || uselocale(NULL) != want_loc)
            atomic_fetch_add(&l_errors, 1);
        wchar_t wc;
        // U+00E9 in UTF-8: one character there, an error in the C locale.
        int len = mbtowc(&wc, "\xc3\xa9", 2);
        if (id % 2 ? len != 2 || wc != 0xe9 : len != -1)
            atomic_fetch_add(&l_errors, 1);
    }
    return NULL; // exits with its locale still in use: the next one must not inherit it
}

static int check_locale(void)
{
    l_utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!l_utf8) {
        printf("locale: C.UTF-8 missing\n");
        return 0;
    }
    run_threads(L_THREADS, locale_worker);
    run_threads(L_THREADS / 2, locale_worker);
    printf("locale: %d threads, errors %ld\n", L_THREADS + L_THREADS / 2, atomic_load(&l_errors));
    return !atomic_load(&l_errors);
}

/* ---- getcpu ---------------------------------------------------------- */

#define G_THREADS 100
static cpu_set_t g_allowed;
static atomic_long g_bad, g_disagree;

static void getcpu_rounds(int id, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        int cpu = sched_getcpu();
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &g_allowed))
            atomic_fetch_add(&g_bad, 1);
        // Agree with the kernel at least once in a few tries (the thread may move between calls).
        int agreed = 0;
        for (int t = 0; t < 20 && !agreed; t++) {
            unsigned kernel_cpu = ~0u;
            int before = sched_getcpu();
            syscall(SYS_getcpu, &kernel_cpu, NULL, NULL);
            agreed = before == (int)kernel_cpu && sched_getcpu() == (int)kernel_cpu;
        }
        if (!agreed)
            atomic_fetch_add(&g_disagree, 1);
        nap(id + r);
    }
}

// Keeps OS threads busy on every CPU, so a thread that moves really
// changes CPU.
static atomic_int g_stop;
static void *getcpu_spinner(void *arg)
{
    while (!atomic_load(&g_stop)) {
        for (volatile int i = 0; i < 20000; i++)
            ;
        sched_yield();
    }
    return arg;
}

static void *getcpu_worker(void *arg)
{
    getcpu_rounds((int)(intptr_t)arg, 50);
    return NULL;
}

static int check_getcpu(void)
{
    sched_getaffinity(0, sizeof g_allowed, &g_allowed);
    pthread_t t[G_THREADS], spinners[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&spinners[i], NULL, getcpu_spinner, NULL);
    for (int i = 0; i < G_THREADS; i++)
        pthread_create(&t[i], NULL, getcpu_worker, (void *)(intptr_t)i);
    getcpu_rounds(0, 1000); // main too: it moves as well (sleeping every other round)
    for (int i = 0; i < G_THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(spinners[i], NULL);
    printf("getcpu: %d threads and main, invalid cpu %ld, never agreeing with the kernel %ld\n",
           G_THREADS, atomic_load(&g_bad), atomic_load(&g_disagree));
    return !atomic_load(&g_bad) && !atomic_load(&g_disagree);
}

/* ---- owner ----------------------------------------------------------- */

#define O_PAIRS 40
struct owned {
    pthread_mutex_t recursive, errorcheck;
    pthread_rwlock_t rw;
    atomic_int stage;
};
static struct owned o_locks[O_PAIRS];
static atomic_long o_errors;

static void expect(int got, int want)
{
    if (got != want)
        atomic_fetch_add(&o_errors, 1);
}

static void *owner_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    struct owned *o = &o_locks[id / 2];
    if (id % 2 == 0) {
        expect(pthread_mutex_lock(&o->recursive), 0);
        expect(pthread_mutex_lock(&o->errorcheck), 0);
        expect(pthread_rwlock_wrlock(&o->rw), 0);
        atomic_store(&o->stage, 1);
        while (atomic_load(&o->stage) < 2)
            usleep(300);                                 // blocked while holding all three
        expect(pthread_mutex_trylock(&o->recursive), 0); // recursion by the owner
        expect(pthread_mutex_lock(&o->errorcheck), EDEADLK);
#ifdef __GLIBC__ /* musl's rwlock does not detect it: natively the thread hangs */
        expect(pthread_rwlock_wrlock(&o->rw), EDEADLK);
#endif
        expect(pthread_mutex_unlock(&o->recursive), 0);
        expect(pthread_mutex_unlock(&o->recursive), 0);
        expect(pthread_mutex_unlock(&o->errorcheck), 0);
        expect(pthread_rwlock_unlock(&o->rw), 0);
        atomic_store(&o->stage, 3);
    } else {
        while (atomic_load(&o->stage) < 1)
            usleep(300);
        sched_yield();
        expect(pthread_mutex_trylock(&o->recursive), EBUSY);
        expect(pthread_mutex_trylock(&o->errorcheck), EBUSY);
        expect(pthread_mutex_unlock(&o->errorcheck), EPERM);
        expect(pthread_rwlock_trywrlock(&o->rw), EBUSY);
        expect(pthread_rwlock_tryrdlock(&o->rw), EBUSY);
        atomic_store(&o->stage, 2);
        while (atomic_load(&o->stage) < 3)
            usleep(300);
        expect(pthread_mutex_trylock(&o->recursive), 0); // free now, and ours
        expect(pthread_mutex_unlock(&o->recursive), 0);
    }
    return NULL;
}

static int check_owner(void)
{
    pthread_mutexattr_t rec, err;
    pthread_mutexattr_init(&rec);
    pthread_mutexattr_settype(&rec, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutexattr_init(&err);
    pthread_mutexattr_settype(&err, PTHREAD_MUTEX_ERRORCHECK);
    for (int i = 0; i < O_PAIRS; i++) {
        pthread_mutex_init(&o_locks[i].recursive, &rec);
        pthread_mutex_init(&o_locks[i].errorcheck, &err);
        pthread_rwlock_init(&o_locks[i].rw, NULL);
    }
    run_threads(2 * O_PAIRS, owner_worker);
    printf("owner: %d threads, wrong results %ld\n", 2 * O_PAIRS, atomic_load(&o_errors));
    return !atomic_load(&o_errors);
}

/* ---- fresh ----------------------------------------------------------- */

static atomic_long f_errors;
static locale_t f_loc;

// Checks a fresh thread's state, then leaves all of it dirty on exit.
static void *fresh_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (errno != 0 || h_errno != 0 || dlerror() != NULL || uselocale(NULL) != LC_GLOBAL_LOCALE)
        atomic_fetch_add(&f_errors, 1);
    errno = 1234;
    h_errno = TRY_AGAIN;
    char name[48];
    snprintf(name, sizeof name, "tls_glibc_fresh_%d", id);
    (void)!dlsym(RTLD_DEFAULT, name); // leaves an unread dlerror message
    uselocale(f_loc);
    (void)!strsignal(2000 + id);
    usleep(100);
    return NULL;
}

static int check_fresh(void)
{
    f_loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    // One at a time: each new thread may be built from the last one's leftovers.
    for (int i = 0; i < 50; i++) {
        pthread_t t;
        pthread_create(&t, NULL, fresh_worker, (void *)(intptr_t)i);
        pthread_join(t, NULL);
    }
    run_threads(50, fresh_worker);
    run_threads(50, fresh_worker);
    printf("fresh: 150 threads, inherited state %ld\n", atomic_load(&f_errors));
    return !atomic_load(&f_errors);
}

/* ---- jmp ------------------------------------------------------------- */

#define J_THREADS 50
#define J_HOPS 8
static atomic_long j_landed;

static void *jmp_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    jmp_buf buf;
    sigjmp_buf sbuf;
    int v = setjmp(buf);
    if (v < J_HOPS) {
        nap(id + v);
        longjmp(buf, v + 1);
    }
    atomic_fetch_add(&j_landed, 1);
    v = sigsetjmp(sbuf, 0);
    if (v < J_HOPS) {
        nap(id + v + 1);
        siglongjmp(sbuf, v + 1);
    }
    atomic_fetch_add(&j_landed, 1);
    return NULL;
}

static int check_jmp(void)
{
    run_threads(J_THREADS, jmp_worker);
    printf("jmp: %d threads x %d hops, landed %ld of %d\n", J_THREADS, J_HOPS,
           atomic_load(&j_landed), 2 * J_THREADS);
    return atomic_load(&j_landed) == 2 * J_THREADS;
}

/* ---- fork ------------------------------------------------------------ */

#define K_THREADS 8
__thread int k_tls = 5;
__thread char k_name[32];
static atomic_long k_errors;

static void *k_child_thread(void *arg)
{
    return (void *)(intptr_t)(k_tls == 5 && (intptr_t)arg == 42); // a fresh image
}

// In the child: everything the forking thread had, plus working libc.
static int k_child(int id, pthread_t parent_self, int *pipe_w)
{
    char expect[32];
    snprintf(expect, sizeof expect, "forker-%d", id);
    int ok = k_tls == 1000 + id && strcmp(k_name, expect) == 0 && errno == 77 &&
             pthread_equal(pthread_self(), parent_self);
    char *p = malloc(5000);
    ok &= p != NULL;
    free(p);
    pthread_t t;
    void *ret = NULL;
    ok &= pthread_create(&t, NULL, k_child_thread, (void *)42) == 0 && pthread_join(t, &ret) == 0 &&
          ret == (void *)1;
    FILE *f = fdopen(*pipe_w, "w");
    ok &= f && fprintf(f, "child of %s\n", k_name) > 0 && fclose(f) == 0;
    return ok ? 0 : 3;
}

static void *fork_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    k_tls = 1000 + id;
    snprintf(k_name, sizeof k_name, "forker-%d", id);
    for (int r = 0; r < 5; r++)
        nap(id + r);
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    pthread_t self = pthread_self();
    errno = 77;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        _exit(k_child(id, self, &fds[1]));
    }
    int saved = errno;
    close(fds[1]);
    char line[64] = "", expect[64];
    ssize_t n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    line[n > 0 ? n : 0] = 0;
    snprintf(expect, sizeof expect, "child of forker-%d\n", id);
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0 || saved != 77 || strcmp(line, expect) != 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0 || k_tls != 1000 + id)
        atomic_fetch_add(&k_errors, 1);
    return NULL;
}

static int check_fork(void)
{
    fflush(stdout); // the children must not print our buffer again
    run_threads(K_THREADS, fork_worker);
    printf("fork: %d forking threads, errors %ld\n", K_THREADS, atomic_load(&k_errors));
    return !atomic_load(&k_errors);
}

/* ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(void);
} checks[] = {
    {"malloc", check_malloc}, {"stdio", check_stdio},   {"dlerror", check_dlerror},
    {"locale", check_locale}, {"getcpu", check_getcpu}, {"owner", check_owner},
    {"fresh", check_fresh},   {"jmp", check_jmp},       {"fork", check_fork},
};

int main(int argc, char **argv)
{
    int failed = 0;
    alarm(60);
    for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], checks[c].name) == 0;
        if (wanted) {
            failed += !checks[c].run();
            fflush(stdout);
        }
    }
    printf("failed checks: %d\n", failed);
    return failed ? 1 : 0;
}
