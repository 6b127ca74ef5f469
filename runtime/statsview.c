/* Formatting and parsing of runtime figures (see statsview.h).  Compiled
 * into the library and #included by scripts/fiberize.c: libc only. */
#include "statsview.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sink {
    char *buf;
    size_t len, n;
};

__attribute__((format(printf, 2, 3))) static void put(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k =
        vsnprintf(s->n < s->len ? s->buf + s->n : NULL, s->n < s->len ? s->len - s->n : 0, fmt, ap);
    va_end(ap);
    if (k > 0)
        s->n += (size_t)k;
}

static const char *const names[] = {
#define FZ_VIEW_NAME(name, kind, words) #name,
    FZ_VIEW_FIELDS(FZ_VIEW_NAME)
#undef FZ_VIEW_NAME
};
static const char kinds[] = {
#define FZ_VIEW_KIND(name, kind, words) #kind[0],
    FZ_VIEW_FIELDS(FZ_VIEW_KIND)
#undef FZ_VIEW_KIND
};
static const char *const words[] = {
#define FZ_VIEW_WORDS(name, kind, w) w,
    FZ_VIEW_FIELDS(FZ_VIEW_WORDS)
#undef FZ_VIEW_WORDS
};

size_t fz_view_json(const struct fz_view *v, char *buf, size_t len)
{
    struct sink s = {buf, len, 0};
    put(&s, "{\"pid\":%d,\"uptime_ns\":%llu,\"carriers_target\":%u", v->pid,
        (unsigned long long)v->uptime_ns, v->target);
    for (int i = 0; i < FZ_V_COUNT; i++)
        put(&s, ",\"%s\":%llu", names[i], (unsigned long long)v->v[i]);
    put(&s, ",\"carriers\":[");
    for (unsigned i = 0; i < v->ncarriers; i++) {
        const struct fz_view_carrier *c = &v->carriers[i];
        put(&s,
            "%s{\"index\":%u,\"tid\":%d,\"spare\":%s,\"idle_ns\":%llu,\"switches\":%llu,"
            "\"runq\":%llu}",
            i ? "," : "", i, c->tid, c->spare ? "true" : "false", (unsigned long long)c->idle_ns,
            (unsigned long long)c->switches, (unsigned long long)c->runq);
    }
    put(&s, "]}\n");
    if (len)
        buf[s.n < len ? s.n : len - 1] = '\0';
    return s.n;
}

/* A tolerant reader of exactly our own output: "key":number|true|false
 * pairs, the carriers array holding objects of such pairs. */
bool fz_view_parse(const char *p, struct fz_view *v)
{
    memset(v, 0, sizeof *v);
    struct fz_view_carrier *c = NULL;
    bool in_carriers = false, seen_pid = false;
    while (*p) {
        if (*p == '[') {
            in_carriers = true;
            p++;
            continue;
        }
        if (*p == ']') {
            in_carriers = false;
            c = NULL;
            p++;
            continue;
        }
        if (*p == '{' && in_carriers) {
            c = v->ncarriers < FZ_VIEW_MAX_CARRIERS ? &v->carriers[v->ncarriers++] : NULL;
            p++;
            continue;
        }
        if (*p != '"') {
            p++;
            continue;
        }
        const char *key = ++p;
        while (*p && *p != '"')
            p++;
        size_t klen = (size_t)(p - key);
        if (*p)
            p++;
        if (*p != ':')
            continue;
        p++;
        bool truth = strncmp(p, "true", 4) == 0;
        char *end;
        unsigned long long n = strtoull(p, &end, 10);
        if (end == p && !truth && strncmp(p, "false", 5) != 0)
            continue;
#define KEY(s) (klen == strlen(s) && strncmp(key, s, klen) == 0)
        if (in_carriers && c) {
            if (KEY("tid"))
                c->tid = (int)n;
            else if (KEY("spare"))
                c->spare = truth;
            else if (KEY("idle_ns"))
                c->idle_ns = n;
            else if (KEY("switches"))
                c->switches = n;
            else if (KEY("runq"))
                c->runq = n;
        } else if (!in_carriers) {
            if (KEY("pid"))
                v->pid = (int)n, seen_pid = true;
            else if (KEY("uptime_ns"))
                v->uptime_ns = n;
            else if (KEY("carriers_target"))
                v->target = (unsigned)n;
            else
                for (int i = 0; i < FZ_V_COUNT; i++)
                    if (KEY(names[i]))
                        v->v[i] = n;
        }
#undef KEY
    }
    return seen_pid;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(unsigned long long x, char *out)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", x), j = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[j++] = ',';
        out[j++] = tmp[i];
    }
    out[j] = '\0';
    return out;
}

size_t fz_view_table(const struct fz_view *v, const struct fz_view *prev, char *buf, size_t len)
{
    struct sink s = {buf, len, 0};
    char a[40];
    double dt =
        prev && v->uptime_ns > prev->uptime_ns ? (double)(v->uptime_ns - prev->uptime_ns) / 1e9 : 0;
    put(&s, "fiberize stats, pid %d, up %.2f s\n", v->pid, (double)v->uptime_ns / 1e9);
    if (dt)
        put(&s, "%-44s %15s %12s\n", "", "total", "per second");
    for (int i = 0; i < FZ_V_COUNT; i++) {
        put(&s, "  %-42s %15s", words[i], grouped(v->v[i], a));
        if (dt && kinds[i] == 'C') {
            double d = v->v[i] >= prev->v[i] ? (double)(v->v[i] - prev->v[i]) : 0;
            put(&s, " %12.1f", d / dt);
        }
        put(&s, "\n");
    }
    put(&s, "  %-8s %8s %7s %6s %15s\n", "carrier", "tid", "busy", "queue", "switches");
    for (unsigned i = 0; i < v->ncarriers; i++) {
        const struct fz_view_carrier *c = &v->carriers[i];
        /* busy: the share of the interval (or of the run) it was not asleep */
        double span = dt ? dt * 1e9 : (double)v->uptime_ns;
        double idle = (double)c->idle_ns;
        if (dt && i < prev->ncarriers)
            idle -= (double)prev->carriers[i].idle_ns;
        double busy = span > 0 ? 100.0 * (1.0 - idle / span) : 0;
        if (busy < 0)
            busy = 0;
        if (busy > 100)
            busy = 100;
        put(&s, "  %-8u %8d %6.1f%% %6llu %15s%s\n", i, c->tid, busy, (unsigned long long)c->runq,
            grouped(c->switches, a), c->spare ? "  (spare)" : "");
    }
    return s.n;
}
