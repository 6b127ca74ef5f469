/* Invariants checked, not only written.
 *
 * FZ_ASSERT(cond) states something the runtime's protocols guarantee (a
 * fiber is claimed by one carrier at a time, a waiter is finished once, a
 * lock is held where a function needs it).  With FZ_CHECKS=1 (the default
 * build, so `make check`) a false one calls fz_throw; a release build
 * (`make RELEASE=1`) compiles the condition but never evaluates it, so it
 * costs nothing and still must name real variables.
 *
 * Broken invariants are thrown, not returned: the state is already wrong,
 * and continuing would turn one bug into a later, unrelated-looking crash.
 * fz_throw is safe where assert(3) is not: on the scheduler path the loaded
 * thread pointer may be another fiber's, and abort(3) and stdio use it.  It
 * writes one line with the raw write(2) and kills the process with SIGABRT
 * (the program's handler, if any, is reset first: the runtime is broken,
 * the program must not go on).
 */
#ifndef FZ_ASSERT_H
#define FZ_ASSERT_H

#ifndef FZ_CHECKS
#define FZ_CHECKS 0
#endif

/* Report `what` (failed at file:line) and end the process; never returns. */
__attribute__((noreturn, cold)) void fz_throw(const char *what, const char *file, int line);

#define FZ_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (FZ_CHECKS && __builtin_expect(!(cond), 0))                                             \
            fz_throw(#cond, __FILE__, __LINE__);                                                   \
    } while (0)

/* The size the runtime lays its shared structures out for: objects written
 * by different carriers keep to different lines. */
#define FZ_CACHE_LINE 64

#endif
