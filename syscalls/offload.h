/* Offloading a call to the blocking pool, declared in one line.
 *
 *   FZ_OFFLOAD(static, int, pool_flock, fz_real.flock, FZ_OFFLOAD_WAIT,
 *              (int, fd), (int, op))
 *
 * defines `static int pool_flock(int fd, int op)`: on a fiber it makes
 * fz_real.flock(fd, op) on a pool thread through a call interface prepared
 * on first use, and parks the fiber meanwhile; anywhere else it
 * calls fz_real.flock directly.  FZ_OFFLOADED(ret, name, policy, params...)
 * is the exported interposer whose whole job is that: the real `name`, in
 * the pool when the "pool" hook family is on.
 *
 * Policies say how the call meets signals and pthread_cancel:
 *   FZ_OFFLOAD_PLAIN   neither ends it (getaddrinfo: the caller waits)
 *   FZ_OFFLOAD_CANCEL  a cancellation point, acted on before the call
 *                      (fsync: the kernel does not interrupt it either)
 *   FZ_OFFLOAD_INTR    a wait signals interrupt: a handler without
 *                      SA_RESTART makes it fail with EINTR (flock)
 *   FZ_OFFLOAD_WAIT    the same, and a cancellation point: pthread_cancel
 *                      interrupts it too, then acts (waitpid, F_SETLKW)
 *   FZ_OFFLOAD_SPAWN   starts processes: made with the caller's signal mask
 * FZ_OFFLOAD_INLINE, or'ed into PLAIN or CANCEL, says the call usually
 * returns at once (fsync on a cached file): the fiber makes it in place,
 * on its carrier and with its own TLS, and the monitor hands the carrier's
 * other fibers off if it lasts (runtime/monitor.h, fz_blocking_enter).  A
 * pool round trip costs two cross-thread wake-ups (about 40 us on a
 * 2-core VM, make bench), the call in place what it costs natively.  The
 * policies that a signal or pthread_cancel must interrupt (INTR, WAIT) and
 * SPAWN, and calls that usually wait long (DNS, system), stay in the pool:
 * a carrier blocked there would hold its fibers until the hand-off.
 * Parameters are (type, name) pairs, at most 8; each type is classified
 * by _Generic (the scalar types below, anything else passes as a pointer),
 * and so is the result.
 *
 * The call interface is per libc: libffi on glibc (offload_glibc.c), a
 * hand-written call on musl, where libffi is not packaged
 * (offload_musl.c).  This header and offload.c are the same for both.
 */
#ifndef FZ_OFFLOAD_H
#define FZ_OFFLOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "runtime/spinlock.h"
#include "syscalls/hook.h"

enum fz_offload_policy {
    FZ_OFFLOAD_PLAIN = 1, /* not 0: PLAIN | INLINE must not read as INLINE alone */
    FZ_OFFLOAD_CANCEL,
    FZ_OFFLOAD_INTR,
    FZ_OFFLOAD_WAIT,
    FZ_OFFLOAD_SPAWN,
    FZ_OFFLOAD_POLICY = 0xff, /* the bits above: the policy */
    FZ_OFFLOAD_INLINE = 0x100,
};

#define FZ_OFFLOAD_MAX_ARGS 8

/* What an argument or the result is, for the call interface. */
enum fz_offload_kind {
    FZ_KIND_INT,
    FZ_KIND_UINT,
    FZ_KIND_LONG,
    FZ_KIND_ULONG,
    FZ_KIND_LLONG,
    FZ_KIND_ULLONG,
    FZ_KIND_POINTER,
};

#define FZ_OFFLOAD_KIND(t)                                                                         \
    _Generic((t)0, int                                                                             \
             : FZ_KIND_INT, unsigned                                                               \
             : FZ_KIND_UINT, long                                                                  \
             : FZ_KIND_LONG, unsigned long                                                         \
             : FZ_KIND_ULONG, long long                                                            \
             : FZ_KIND_LLONG, unsigned long long                                                   \
             : FZ_KIND_ULLONG, default                                                             \
             : FZ_KIND_POINTER)

/* Room for the libc side's prepared interface (offload_glibc.c checks
 * that libffi's fits). */
#define FZ_OFFLOAD_IFACE_WORDS 16

struct fz_offload {
    int policy; /* enum fz_offload_policy */
    atomic_int ready;
    fz_spinlock lock;
    unsigned char nargs, result, kinds[FZ_OFFLOAD_MAX_ARGS]; /* enum fz_offload_kind */
    uint64_t iface[FZ_OFFLOAD_IFACE_WORDS];
};

/* The result as the call interface stores it: a whole register, of which
 * the result type's bytes are the low ones (libffi widens small integer
 * results to this too). */
typedef uint64_t fz_offload_word;

/* Prepare o's call interface once; false if it cannot be made (the caller
 * then makes the call in place). */
bool fz_offload_prepare(struct fz_offload *o, enum fz_offload_kind result,
                        const unsigned char *kinds, unsigned n);
/* Make fn(args) in the pool (the caller is a fiber; o is prepared).
 * False if a signal or cancellation came first and fn was not called: the
 * caller returns -1 with errno EINTR. */
bool fz_offload_call(struct fz_offload *o, void (*fn)(void), fz_offload_word *ret, void **args);
/* Around a call made in place (FZ_OFFLOAD_INLINE; the caller is a fiber):
 * begin acts on a pending cancellation (CANCEL) and marks the carrier,
 * end clears the mark.  Neither touches errno. */
struct fz_carrier *fz_offload_inline_begin(int policy);
void fz_offload_inline_end(struct fz_carrier *c);

/* The libc side (offload_glibc.c, offload_musl.c): make the interface's
 * code ready (called with no lock held, before any prepare; false only
 * for now, from a signal handler: the call is made in place); fill
 * o->iface from o->nargs, o->result and o->kinds (false if it cannot),
 * and make the call on the current thread. */
bool fz_offload_iface_load(void);
bool fz_offload_iface_prepare(struct fz_offload *o);
void fz_offload_iface_call(const struct fz_offload *o, void (*fn)(void), fz_offload_word *ret,
                           void **args);
/* The hand-written interface (offload_direct.c): integer and pointer
 * kinds, at most 8 arguments, x86-64 System V. */
bool fz_offload_direct_prepare(const struct fz_offload *o);
void fz_offload_direct_call(const struct fz_offload *o, void (*fn)(void), fz_offload_word *ret,
                            void **args);

/* (type, name) pairs -> parameter list, names, addresses, kinds */
#define FZ_PARAM_(t, n) t n
#define FZ_NAME_(t, n) n
#define FZ_ADDR_(t, n) (void *)&n
#define FZ_KIND_(t, n) FZ_OFFLOAD_KIND(t)
#define FZ_NARGS(...) FZ_NARGS_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define FZ_NARGS_(a1, a2, a3, a4, a5, a6, a7, a8, n, ...) n
#define FZ_CAT(a, b) FZ_CAT_(a, b)
#define FZ_CAT_(a, b) a##b
#define FZ_MAP(m, ...) FZ_CAT(FZ_MAP_, FZ_NARGS(__VA_ARGS__))(m, __VA_ARGS__)
#define FZ_MAP_1(m, p) m p
#define FZ_MAP_2(m, p, ...) m p, FZ_MAP_1(m, __VA_ARGS__)
#define FZ_MAP_3(m, p, ...) m p, FZ_MAP_2(m, __VA_ARGS__)
#define FZ_MAP_4(m, p, ...) m p, FZ_MAP_3(m, __VA_ARGS__)
#define FZ_MAP_5(m, p, ...) m p, FZ_MAP_4(m, __VA_ARGS__)
#define FZ_MAP_6(m, p, ...) m p, FZ_MAP_5(m, __VA_ARGS__)
#define FZ_MAP_7(m, p, ...) m p, FZ_MAP_6(m, __VA_ARGS__)
#define FZ_MAP_8(m, p, ...) m p, FZ_MAP_7(m, __VA_ARGS__)

/* Locals carry a fz_ prefix: they share a scope with the parameters. */
#define FZ_OFFLOAD(storage, ret, name, real, policy_, ...)                                         \
    storage ret name(FZ_MAP(FZ_PARAM_, __VA_ARGS__))                                               \
    {                                                                                              \
        static struct fz_offload fz_o = {.policy = policy_};                                       \
        static const unsigned char fz_kinds[] = {FZ_MAP(FZ_KIND_, __VA_ARGS__)};                   \
        if (!fz_self())                                                                            \
            return real(FZ_MAP(FZ_NAME_, __VA_ARGS__));                                            \
        if ((policy_)&FZ_OFFLOAD_INLINE) {                                                         \
            struct fz_carrier *fz_c = fz_offload_inline_begin(policy_);                            \
            ret fz_r = real(FZ_MAP(FZ_NAME_, __VA_ARGS__));                                        \
            fz_offload_inline_end(fz_c);                                                           \
            return fz_r;                                                                           \
        }                                                                                          \
        if (!fz_offload_prepare(&fz_o, FZ_OFFLOAD_KIND(ret), fz_kinds, FZ_NARGS(__VA_ARGS__)))     \
            return real(FZ_MAP(FZ_NAME_, __VA_ARGS__));                                            \
        void *fz_args[] = {FZ_MAP(FZ_ADDR_, __VA_ARGS__)};                                         \
        union {                                                                                    \
            fz_offload_word word; /* the call stores a whole register */                           \
            ret value;                                                                             \
        } fz_ret;                                                                                  \
        if (!fz_offload_call(&fz_o, (void (*)(void))real, &fz_ret.word, fz_args))                  \
            return (ret)-1;                                                                        \
        return fz_ret.value;                                                                       \
    }

#define FZ_OFFLOADED(ret, name, policy, ...)                                                       \
    FZ_OFFLOAD(static, ret, pool_##name, fz_real.name, policy, __VA_ARGS__)                        \
    FZ_EXPORT ret name(FZ_MAP(FZ_PARAM_, __VA_ARGS__))                                             \
    {                                                                                              \
        if (!fz_hook_active(FZ_HOOK_POOL))                                                         \
            return fz_real.name(FZ_MAP(FZ_NAME_, __VA_ARGS__));                                    \
        return pool_##name(FZ_MAP(FZ_NAME_, __VA_ARGS__));                                         \
    }

#endif
