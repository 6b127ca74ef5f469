/* Name lookups from many threads: the calls fiberize hands to its blocking
 * pool must give each thread exactly what the real call gives it.
 *
 * Only /etc/hosts and numeric forms are used: "localhost" is found by the
 * files backend, and the failing names ("", "1.2.3.4.5") are rejected
 * before any resolver is asked, so no packet leaves the machine and the
 * run is deterministic.  The printed results are the same natively and
 * fiberized only if every lookup ran, returned its own results, and left
 * h_errno in the calling thread (a pool thread has its own h_errno).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define GAI_THREADS 200
#define SMALL_THREADS 20
#define LINE 512

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

/* ---- getaddrinfo from 200 threads -------------------------------------- */

static char gai_text[GAI_THREADS][LINE];

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One result as "family socktype protocol address port". */
static void format_addrinfo(const struct addrinfo *ai, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ai->ai_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)ai->ai_addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (ai->ai_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }
    snprintf(out, n, "%d/%d/%d %s %u", ai->ai_family, ai->ai_socktype, ai->ai_protocol, host, port);
}

/* Sorted unique results, joined by "; ", so the order glibc returns them
 * in does not matter but every distinct result does. */
static void *gai_thread(void *arg)
{
    long id = (long)arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC}, *res = NULL;
    int rc = getaddrinfo("localhost", "80", &hints, &res);
    if (rc != 0) {
        snprintf(gai_text[id], LINE, "error %d", rc);
        return NULL;
    }
    char items[32][96], *sorted[32];
    int n = 0;
    for (struct addrinfo *ai = res; ai && n < 32; ai = ai->ai_next, n++) {
        format_addrinfo(ai, items[n], sizeof items[n]);
        sorted[n] = items[n];
    }
    freeaddrinfo(res);
    qsort(sorted, n, sizeof sorted[0], cmp_str);
    size_t len = 0;
    gai_text[id][0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
            continue;
        len += snprintf(gai_text[id] + len, LINE - len, "%s%s", len ? "; " : "", sorted[i]);
        if (len >= LINE)
            break;
    }
    return NULL;
}

static void test_getaddrinfo(void)
{
    pthread_t t[GAI_THREADS];
    for (long i = 0; i < GAI_THREADS; i++)
        if (pthread_create(&t[i], NULL, gai_thread, (void *)i) != 0)
            exit(2);
    for (int i = 0; i < GAI_THREADS; i++)
        pthread_join(t[i], NULL);
    int same = 0;
    for (int i = 0; i < GAI_THREADS; i++)
        same += strcmp(gai_text[i], gai_text[0]) == 0;
    printf("getaddrinfo localhost 80: %s\n", gai_text[0]);
    printf("getaddrinfo: %d of %d threads got that\n", same, GAI_THREADS);
    check("getaddrinfo found localhost", strstr(gai_text[0], "127.0.0.1 80") != NULL);
    if (same != GAI_THREADS)
        failures++;

    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST}, *res = NULL;
    int rc = getaddrinfo("1.2.3.4.5", NULL, &hints, &res);
    check("getaddrinfo bad numeric host is EAI_NONAME", rc == EAI_NONAME);
    rc = getaddrinfo("127.0.0.1", "no-such-service-here", &hints, &res);
    check("getaddrinfo unknown service fails", rc == EAI_SERVICE || rc == EAI_NONAME);
}

/* ---- getnameinfo ------------------------------------------------------- */

static void *gni_thread(void *arg)
{
    long id = (long)arg;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8000 + id)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char host[64], serv[16], want[24];
    int rc = getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, serv, sizeof serv,
                         NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(want, sizeof want, "%ld", 8000 + id);
    return (void *)(long)(rc == 0 && strcmp(host, "127.0.0.1") == 0 && strcmp(serv, want) == 0);
}

static void test_getnameinfo(void)
{
    pthread_t t[SMALL_THREADS];
    int good = 0;
    for (long i = 0; i < SMALL_THREADS; i++)
        pthread_create(&t[i], NULL, gni_thread, (void *)i);
    for (int i = 0; i < SMALL_THREADS; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        good += ok != NULL;
    }
    printf("getnameinfo numeric: %d of %d threads right\n", good, SMALL_THREADS);
    if (good != SMALL_THREADS)
        failures++;

    struct sockaddr_in sin = {.sin_family = AF_INET};
    char host[64];
    int rc = getnameinfo((struct sockaddr *)&sin, 3, host, sizeof host, NULL, 0, NI_NUMERICHOST);
    check("getnameinfo short address is EAI_FAMILY", rc == EAI_FAMILY);
}

/* ---- gethostbyname and the _r forms ------------------------------------ */

static void format_hostent(const struct hostent *h, char *out, size_t n)
{
    size_t len =
        snprintf(out, n, "name %s type %d len %d addrs", h->h_name, h->h_addrtype, h->h_length);
    for (char **a = h->h_addr_list; *a && len < n; a++) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(h->h_addrtype, *a, text, sizeof text);
        len += snprintf(out + len, n - len, " %s", text);
    }
}

/* The static-buffer form, from a thread (one at a time: it is not
 * thread-safe natively either). */
static void *ghbn_thread(void *arg)
{
    char *out = arg;
    struct hostent *h = gethostbyname("localhost");
    if (h)
        format_hostent(h, out, LINE);
    else
        snprintf(out, LINE, "failed h_errno %d", h_errno);
    return NULL;
}

/* A failing lookup must leave h_errno in the thread that made it.  The
 * thread's own h_errno is primed to a value no failure produces. */
static void *ghbn_fail_thread(void *arg)
{
    int *out = arg;
    h_errno = 0;
    out[0] = gethostbyname("") == NULL;
    out[1] = h_errno;
    h_errno = 0;
    out[2] = gethostbyname("1.2.3.4.5") == NULL;
    out[3] = h_errno;
    return NULL;
}

static char r_text[SMALL_THREADS][LINE];

static void *ghbn_r_thread(void *arg)
{
    long id = (long)arg;
    struct hostent he, *result = NULL;
    char buf[1024];
    int err = -1;
    int rc = gethostbyname_r("localhost", &he, buf, sizeof buf, &result, &err);
    if (rc == 0 && result == &he)
        format_hostent(result, r_text[id], LINE);
    else
        snprintf(r_text[id], LINE, "rc %d err %d", rc, err);
    return NULL;
}

static char addr_text[SMALL_THREADS][LINE];

static void *ghba_r_thread(void *arg)
{
    long id = (long)arg;
    struct in_addr loop = {htonl(INADDR_LOOPBACK)};
    struct hostent he, *result = NULL;
    char buf[1024];
    int err = -1;
    int rc = gethostbyaddr_r(&loop, sizeof loop, AF_INET, &he, buf, sizeof buf, &result, &err);
    if (rc == 0 && result == &he)
        format_hostent(result, addr_text[id], LINE);
    else
        snprintf(addr_text[id], LINE, "rc %d err %d", rc, err);
    return NULL;
}

/* Each _r form from 20 threads at once; all must agree. */
static void run_all_agree(const char *what, void *(*fn)(void *), char text[][LINE])
{
    pthread_t t[SMALL_THREADS];
    for (long i = 0; i < SMALL_THREADS; i++)
        pthread_create(&t[i], NULL, fn, (void *)i);
    for (int i = 0; i < SMALL_THREADS; i++)
        pthread_join(t[i], NULL);
    int same = 0;
    for (int i = 0; i < SMALL_THREADS; i++)
        same += strcmp(text[i], text[0]) == 0;
    printf("%s: %s (%d of %d agree)\n", what, text[0], same, SMALL_THREADS);
    if (same != SMALL_THREADS)
        failures++;
}

static void test_gethostby(void)
{
    pthread_t t;
    char text[LINE];
    pthread_create(&t, NULL, ghbn_thread, text);
    pthread_join(t, NULL);
    printf("gethostbyname localhost: %s\n", text);

    int fail[4];
    pthread_create(&t, NULL, ghbn_fail_thread, fail);
    pthread_join(t, NULL);
    printf("gethostbyname \"\": null %d h_errno %d\n", fail[0], fail[1]);
    printf("gethostbyname 1.2.3.4.5: null %d h_errno %d\n", fail[2], fail[3]);
    check("failed lookups set h_errno in their thread",
          fail[0] && fail[2] && fail[1] != 0 && fail[3] == HOST_NOT_FOUND);

    run_all_agree("gethostbyname_r localhost", ghbn_r_thread, r_text);
    run_all_agree("gethostbyaddr_r 127.0.0.1", ghba_r_thread, addr_text);

    /* ERANGE: a buffer too small is reported through the return value */
    struct hostent he, *result = &he;
    char tiny[4];
    int err = 0;
    int rc = gethostbyname_r("localhost", &he, tiny, sizeof tiny, &result, &err);
    check("gethostbyname_r tiny buffer is ERANGE", rc == ERANGE && result == NULL);
}

int main(void)
{
    test_getaddrinfo();
    test_getnameinfo();
    test_gethostby();
    printf("%s\n", failures ? "FAILED" : "done");
    return failures ? 1 : 0;
}
