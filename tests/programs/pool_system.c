/* system, popen and pclose from threads.
 *
 * system() waits for its shell inside libc (no interposer sees that wait),
 * so fiberize runs it in the blocking pool; pclose waits the same way.
 * Each call's status must reach the thread that made it: 50 threads run
 * system("true") at once, others get distinct exit codes back, and
 * popen'ed children's output and exit codes come back to their own
 * threads.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TRUE_THREADS 50
#define CODE_THREADS 20
#define POPEN_THREADS 20

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

static void *run_true(void *arg)
{
    return (void *)(long)(system("true") == 0);
}

/* Thread i runs "exit i" and expects exactly that code back. */
static void *run_code(void *arg)
{
    long code = (long)arg;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "exit %ld", code);
    int st = system(cmd);
    return (void *)(long)(WIFEXITED(st) && WEXITSTATUS(st) == code);
}

/* Thread i reads "line i" from a child and gets exit code i back. */
static void *run_popen(void *arg)
{
    long id = (long)arg;
    char cmd[64], want[32], got[64] = "";
    snprintf(cmd, sizeof cmd, "echo line %ld; exit %ld", id, id + 1);
    snprintf(want, sizeof want, "line %ld\n", id);
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    if (!fgets(got, sizeof got, f))
        got[0] = '\0';
    int st = pclose(f);
    return (void *)(long)(strcmp(got, want) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == id + 1);
}

static int run_threads(void *(*fn)(void *), int n, long base)
{
    pthread_t t[64];
    int good = 0;
    for (long i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(base + i)) != 0)
            exit(2);
    for (int i = 0; i < n; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        good += ok != NULL;
    }
    return good;
}

int main(void)
{
    int good = run_threads(run_true, TRUE_THREADS, 0);
    printf("system(\"true\") from %d threads: %d returned 0\n", TRUE_THREADS, good);
    if (good != TRUE_THREADS)
        failures++;

    good = run_threads(run_code, CODE_THREADS, 1);
    printf("system(\"exit i\") from %d threads: %d got their own code\n", CODE_THREADS, good);
    if (good != CODE_THREADS)
        failures++;

    int st = system("exit 3");
    printf("system(\"exit 3\"): exited %d status %d\n", WIFEXITED(st), WEXITSTATUS(st));
    st = system("kill -TERM $$");
    printf("system(\"kill -TERM $$\"): signaled %d signal %d\n", WIFSIGNALED(st), WTERMSIG(st));
    printf("system(NULL): %d\n", system(NULL) != 0);

    good = run_threads(run_popen, POPEN_THREADS, 0);
    printf("popen/pclose from %d threads: %d right\n", POPEN_THREADS, good);
    if (good != POPEN_THREADS)
        failures++;

    FILE *f = popen("exit 7", "r");
    st = f ? pclose(f) : -1;
    printf("pclose(\"exit 7\"): exited %d status %d\n", WIFEXITED(st), WEXITSTATUS(st));
    f = popen("cat >/dev/null; exit 5", "w");
    if (f)
        fputs("some input\n", f);
    st = f ? pclose(f) : -1;
    printf("pclose(write end, \"exit 5\"): exited %d status %d\n", WIFEXITED(st), WEXITSTATUS(st));
    check("system and pclose done", 1);
    printf("%s\n", failures ? "FAILED" : "done");
    return failures ? 1 : 0;
}
