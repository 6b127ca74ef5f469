/* Minimal TAP output for unit tests: each check prints "ok N - what" or
 * "not ok N - what"; tap_done() prints the plan and returns the exit code. */
#ifndef FZ_TAP_H
#define FZ_TAP_H
#include <stdio.h>

static int tap_n, tap_failed;

#define TAP_CHECK(cond, ...)                                                                       \
    do {                                                                                           \
        int ok_ = !!(cond);                                                                        \
        tap_n++;                                                                                   \
        if (!ok_)                                                                                  \
            tap_failed++;                                                                          \
        printf("%sok %d - ", ok_ ? "" : "not ", tap_n);                                            \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        if (!ok_)                                                                                  \
            printf("# failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                          \
        fflush(stdout);                                                                            \
    } while (0)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}
#endif
