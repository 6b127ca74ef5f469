/* stdio on pipes, sockets and terminals: the fiber parks where glibc's
 * stdio would block its carrier.
 *
 * glibc's stdio reads and writes through its own internal read and write,
 * never through the PLT, so no interposer sees a FILE's refills and
 * flushes: fgets on a socket whose buffer ran dry blocked the carrier in
 * read(2) and the monitor had to hand its fibers off (200 threads of
 * fdopen + fgets ran on ~200 OS threads, 2.5-4x slower than natively).
 *
 * So the stream functions themselves are interposed, for streams whose fd
 * the reactor can wait on and that the program keeps blocking (its own
 * O_NONBLOCK streams go to the real call, which never waits).  Reading:
 * every refill glibc would make with a read(2) is preceded by a park until
 * the fd is readable (fz_io_wait, the one wait on an fd), and glibc then
 * refills through its exported __underflow/__uflow, whose single read
 * finds data (or EOF) at once.  The loops that refill more than once --
 * fgets, getdelim, fread -- are written here so that each refill gets its
 * wait; they follow glibc's own loops step for step (return values, the
 * error and EOF flags, fgets' EAGAIN rule, getdelim's buffer growth), as
 * the FILE's fields are glibc's public ABI.  Writing: a flush or a
 * direct write of the caller's data is made here with the interposed
 * write(2) (which parks, and loops over partial writes as glibc's own
 * write loop does), in the same pieces glibc makes, and the put area is
 * reset as glibc resets it; everything that does not write is glibc's.
 *
 * A wait that ends with an error (a signal handler without SA_RESTART,
 * SO_RCVTIMEO, pthread_cancel) reports it exactly as the failed read(2)
 * would have: the error flag, errno, EOF.  Cancellation unwinds with the
 * FILE lock released, as glibc's own cleanup does.  Anything unusual -- a
 * wide stream, a pushback area, markers, a stream opened with "c" (no
 * cancellation points) -- is left to the real function, which may then
 * block the carrier as before (the monitor hands its fibers off); so is a
 * refill that another reader of the same fd raced to the data.
 *
 * glibc only (the FILE layout and libio's flag bits): on other libcs the
 * Makefile leaves this file out and stdio runs unchanged.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include "runtime/reactor.h"
#include "syscalls/hook.h"
#include "syscalls/io.h"

/* <stdio.h> makes some of the interposed names macros when optimising,
 * and others inline functions: those are defined below under other C
 * names with the symbol's name as their assembler name. */
#undef fread_unlocked
#undef fwrite_unlocked
#undef getc
#undef putc
#undef getc_unlocked
#undef putc_unlocked
#undef fgetc_unlocked
#undef fputc_unlocked
#undef getchar_unlocked
#undef putchar_unlocked

/* glibc's fortify entry points (exported, declared for its own headers
 * only) */
extern void __chk_fail(void) __attribute__((noreturn));
extern int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt,
                           va_list ap);

/* libio's flag bits (libio.h, unchanged since glibc 2.0; the FILE fields
 * are in the public <bits/types/struct_FILE.h>). */
#define LIBIO_UNBUFFERED 0x0002
#define LIBIO_NO_READS 0x0004
#define LIBIO_NO_WRITES 0x0008
#define LIBIO_EOF_SEEN 0x0010
#define LIBIO_ERR_SEEN 0x0020
#define LIBIO_LINKED 0x0080
#define LIBIO_IN_BACKUP 0x0100
#define LIBIO_LINE_BUF 0x0200
#define LIBIO_CURRENTLY_PUTTING 0x0800
#define LIBIO_IS_APPENDING 0x1000
#define LIBIO_FLAGS2_NOTCANCEL 2
#define LIBIO_POS_BAD ((off64_t)-1)

/* ---- which streams ---------------------------------------------------- */

/* The reactor's state of fp's fd if the calling fiber may park on it:
 * hooks on, a byte stream (or not yet oriented) over a pollable fd the
 * program keeps blocking, with cancellation points (no "c" mode), and no
 * pushback area or markers, whose bookkeeping stays glibc's.  NULL: the
 * real function. */
static struct fz_fd *parkable(FILE *fp)
{
    if (fp->_mode > 0 || (fp->_flags2 & LIBIO_FLAGS2_NOTCANCEL) || (fp->_flags & LIBIO_IN_BACKUP) ||
        fp->_markers || fp->_fileno < 0 || !fz_io_pollable(fp->_fileno))
        return NULL;
    struct fz_fd *s = fz_fd_get(fp->_fileno);
    return fz_fd_nonblock(s) ? NULL : s;
}

/* For the write side also: glibc keeps a column count only for streams
 * that asked for one (never set by stdio itself today), and a stream it
 * may not write to fails without writing: both the real function's. */
static struct fz_fd *parkable_out(FILE *fp)
{
    if (fp->_cur_column || (fp->_flags & LIBIO_NO_WRITES))
        return NULL;
    return parkable(fp);
}

static void orient_bytes(FILE *fp)
{
    if (fp->_mode == 0)
        fwide(fp, -1); /* what glibc's byte functions do first */
}

/* Cancellation while parked holding the FILE lock (in a wait, or in the
 * interposed read or write): release it, as the cleanup glibc's stdio
 * installs around its own lock does. */
static void unlock_on_cancel(void *fp)
{
    funlockfile(fp);
}

/* result = call, under fp's lock (flockfile: the program's own
 * flockfile/ftrylockfile see it as glibc's stdio holds it). */
#define LOCKED(fp, result, call)                                                                   \
    do {                                                                                           \
        flockfile(fp);                                                                             \
        pthread_cleanup_push(unlock_on_cancel, (fp));                                              \
        (result) = (call);                                                                         \
        pthread_cleanup_pop(1);                                                                    \
    } while (0)

/* ---- reading ------------------------------------------------------------ */

/* Would glibc's refill of fp read(2) now?  Its get area is empty (after
 * the switch from writing, when the put area is flushed), EOF is not
 * sticky yet, and reads are allowed. */
static bool refill_reads(FILE *fp)
{
    if (fp->_flags & (LIBIO_EOF_SEEN | LIBIO_NO_READS))
        return false;
    if (fp->_flags & LIBIO_CURRENTLY_PUTTING)
        return fp->_IO_read_end <= fp->_IO_write_ptr;
    return fp->_IO_read_ptr >= fp->_IO_read_end;
}

static int flush_out(FILE *fp);

static int overflow_eof(FILE *fp);

/* What glibc's refill does before it reads a line-buffered or unbuffered
 * stream (a terminal, usually): write out stdout if it is line-buffered,
 * so that a prompt printed without a newline shows before the wait. */
static void flush_stdout_first(FILE *fp)
{
    if (!(fp->_flags & (LIBIO_LINE_BUF | LIBIO_UNBUFFERED)))
        return;
    FILE *out = stdout;
    flockfile(out);
    if ((out->_flags & (LIBIO_LINKED | LIBIO_NO_WRITES | LIBIO_LINE_BUF)) ==
        (LIBIO_LINKED | LIBIO_LINE_BUF)) {
        if (parkable_out(out))
            overflow_eof(out);
        else
            fz_real.__overflow(out, EOF);
    }
    funlockfile(out);
}

/* Park until fd s can be read without blocking.  0, or the errno the read
 * would have failed with (EINTR, EAGAIN after SO_RCVTIMEO, EBADF when the
 * fd was closed meanwhile, a socket error a hidden retry kept).  *seq is
 * the readiness sequence the read that follows starts from. */
static int wait_readable(FILE *fp, struct fz_fd *s, uint32_t *seq)
{
    uint32_t gen = fz_fd_gen(s);
    unsigned call = fz_call_begin(fz_io_intr(s, FZ_READ));
    int err = 0;
    *seq = fz_fd_seq(s, FZ_READ);
    if (!fz_fd_known_empty(s, *seq)) {
        struct pollfd p = {.fd = fp->_fileno, .events = POLLIN};
        if (fz_real.poll(&p, 1, 0) != 0)
            goto out; /* data, EOF, an error or POLLNVAL: the read says which */
    }
    if (fz_fd_error_kept(s) && (err = fz_fd_take_error(s)) != 0)
        goto out;
    uint64_t deadline = fz_io_deadline(s, FZ_READ);
    err = fz_io_wait(s, FZ_READ, *seq, gen, deadline, EAGAIN);
    /* an edge came: the read finds what it announced (another reader of
     * the same fd may take it first; then the read blocks, as before) */
    *seq = fz_fd_seq(s, FZ_READ);
out:
    fz_call_end(call);
    return err;
}

/* glibc's refill of fp (__uflow when take, else __underflow), preceded by
 * a park when it would read a fiber's fd that has nothing yet.  Returns
 * the next byte (consumed when take) or EOF. */
static int refill(FILE *fp, bool take)
{
    struct fz_fd *s = refill_reads(fp) ? parkable(fp) : NULL;
    if (!s)
        return take ? fz_real.__uflow(fp) : fz_real.__underflow(fp);
    /* the switch to reading flushes what was written first */
    if (fp->_IO_write_ptr > fp->_IO_write_base && parkable_out(fp) && flush_out(fp) == EOF)
        return EOF;
    flush_stdout_first(fp);
    uint32_t seq;
    int err = wait_readable(fp, s, &seq);
    if (err) {
        fp->_flags |= LIBIO_ERR_SEEN; /* what the failed read(2) leaves */
        errno = err;
        return EOF;
    }
    int c = fz_real.__underflow(fp);
    /* a short read drained a pipe or stream socket: the next refill can
     * park without asking poll (reactor.h) */
    if (c != EOF && fp->_IO_read_end - fp->_IO_buf_base < fp->_IO_buf_end - fp->_IO_buf_base)
        fz_fd_note_empty(s, seq);
    if (c != EOF && take)
        fp->_IO_read_ptr++;
    return c;
}

/* The next byte of fp, as getc_unlocked. */
static int get_byte(FILE *fp)
{
    if (fp->_IO_read_ptr < fp->_IO_read_end)
        return *(unsigned char *)fp->_IO_read_ptr++;
    return refill(fp, true);
}

/* Up to n bytes into buf, through the first `delim` (kept): glibc's
 * getline loop with a wait before each refill.  Returns the count. */
static size_t get_line(FILE *fp, char *buf, size_t n, int delim)
{
    char *p = buf;
    while (n > 0) {
        ssize_t len = fp->_IO_read_end - fp->_IO_read_ptr;
        if (len <= 0) {
            int c = refill(fp, true);
            if (c == EOF)
                break;
            *p++ = (char)c;
            n--;
            if (c == delim)
                break;
            continue;
        }
        if ((size_t)len > n)
            len = (ssize_t)n;
        char *t = memchr(fp->_IO_read_ptr, delim, (size_t)len);
        if (t)
            len = t - fp->_IO_read_ptr + 1;
        memcpy(p, fp->_IO_read_ptr, (size_t)len);
        fp->_IO_read_ptr += len;
        p += len;
        n -= (size_t)len;
        if (t)
            break;
    }
    return (size_t)(p - buf);
}

static char *fgets_parked(char *buf, int n, FILE *fp)
{
    /* an old error does not fail this call: only a new one (or EOF with
     * nothing read) does, and EAGAIN after some bytes returns them */
    int old_error = fp->_flags & LIBIO_ERR_SEEN;
    fp->_flags &= ~LIBIO_ERR_SEEN;
    size_t count = get_line(fp, buf, (size_t)n - 1, '\n');
    char *result = buf;
    if (count == 0 || ((fp->_flags & LIBIO_ERR_SEEN) && errno != EAGAIN))
        result = NULL;
    else
        buf[count] = '\0';
    fp->_flags |= old_error;
    return result;
}

FZ_EXPORT char *fgets(char *buf, int n, FILE *fp)
{
    if (n <= 1 || !parkable(fp))
        return fz_real.fgets(buf, n, fp);
    char *r;
    LOCKED(fp, r, fgets_parked(buf, n, fp));
    return r;
}

FZ_EXPORT char *fgets_unlocked(char *buf, int n, FILE *fp)
{
    if (n <= 1 || !parkable(fp))
        return fz_real.fgets_unlocked(buf, n, fp);
    return fgets_parked(buf, n, fp);
}

FZ_EXPORT char *__fgets_chk(char *buf, size_t size, int n, FILE *fp)
{
    if ((size_t)n > size)
        __chk_fail();
    return fgets(buf, n, fp);
}

/* glibc's getdelim loop with a wait before each refill (an error flag
 * already set fails it at once, as there). */
static ssize_t getdelim_parked(char **lineptr, size_t *n, int delim, FILE *fp)
{
    ssize_t cur = 0;
    if (ferror_unlocked(fp))
        return -1;
    if (*lineptr == NULL || *n == 0) {
        *n = 120; /* glibc's first size */
        if (!(*lineptr = malloc(*n)))
            return -1;
    }
    ssize_t len = fp->_IO_read_end - fp->_IO_read_ptr;
    if (len <= 0) {
        if (refill(fp, false) == EOF)
            return -1;
        len = fp->_IO_read_end - fp->_IO_read_ptr;
    }
    for (;;) {
        char *t = memchr(fp->_IO_read_ptr, delim, (size_t)len);
        if (t)
            len = t - fp->_IO_read_ptr + 1;
        if (len >= SSIZE_MAX - cur) {
            errno = EOVERFLOW;
            return -1;
        }
        size_t needed = (size_t)(cur + len + 1);
        if (needed > *n) {
            if (needed < 2 * *n)
                needed = 2 * *n; /* glibc's growth: at least double */
            char *grown = realloc(*lineptr, needed);
            if (!grown)
                return -1;
            *lineptr = grown;
            *n = needed;
        }
        memcpy(*lineptr + cur, fp->_IO_read_ptr, (size_t)len);
        fp->_IO_read_ptr += len;
        cur += len;
        if (t || refill(fp, false) == EOF)
            break;
        len = fp->_IO_read_end - fp->_IO_read_ptr;
    }
    (*lineptr)[cur] = '\0';
    return cur;
}

FZ_EXPORT ssize_t getdelim(char **lineptr, size_t *n, int delim, FILE *fp)
{
    if (lineptr == NULL || n == NULL || !parkable(fp))
        return fz_real.getdelim(lineptr, n, delim, fp);
    ssize_t r;
    LOCKED(fp, r, getdelim_parked(lineptr, n, delim, fp));
    return r;
}

FZ_EXPORT ssize_t __getdelim(char **lineptr, size_t *n, int delim, FILE *fp)
    __attribute__((alias("getdelim")));

FZ_EXPORT ssize_t fz_getline(char **lineptr, size_t *n, FILE *fp) __asm__("getline");
ssize_t fz_getline(char **lineptr, size_t *n, FILE *fp)
{
    return getdelim(lineptr, n, '\n', fp);
}

/* glibc's fread loop (xsgetn) with a wait before each refill; a request
 * of a buffer's size or more is read straight into the caller's memory,
 * in the sizes glibc reads, through the interposed read(2), which parks. */
static size_t get_bytes(FILE *fp, char *s, size_t n)
{
    size_t want = n;
    if (fp->_IO_buf_base == NULL && fp->_IO_save_base != NULL)
        return fz_real.fread_unlocked(s, 1, n, fp); /* a pushback before the first read */
    if (fp->_IO_buf_base == NULL)
        fz_real._IO_doallocbuf(fp);
    while (want > 0) {
        size_t have = (size_t)(fp->_IO_read_end - fp->_IO_read_ptr);
        if (fp->_IO_read_end > fp->_IO_read_ptr && want <= have) {
            memcpy(s, fp->_IO_read_ptr, want);
            fp->_IO_read_ptr += want;
            want = 0;
            break;
        }
        if (fp->_IO_read_end > fp->_IO_read_ptr) {
            memcpy(s, fp->_IO_read_ptr, have);
            s += have;
            want -= have;
            fp->_IO_read_ptr += have;
        }
        size_t size = (size_t)(fp->_IO_buf_end - fp->_IO_buf_base);
        if ((fp->_flags & LIBIO_IN_BACKUP) || fp->_IO_buf_base == NULL) {
            want -= fz_real.fread_unlocked(s, 1, want, fp); /* glibc's own */
            break;
        }
        if (want < size) {
            if (refill(fp, false) == EOF)
                break;
            continue;
        }
        fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end = fp->_IO_buf_base;
        fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_write_end = fp->_IO_buf_base;
        size_t count = want;
        if (size >= 128)
            count -= want % size;
        ssize_t r = read(fp->_fileno, s, count);
        if (r <= 0) {
            fp->_flags |= r == 0 ? LIBIO_EOF_SEEN : LIBIO_ERR_SEEN;
            break;
        }
        s += r;
        want -= (size_t)r;
        if (fp->_offset != LIBIO_POS_BAD)
            fp->_offset += r;
    }
    return n - want;
}

static size_t fread_parked(void *buf, size_t size, size_t count, FILE *fp)
{
    size_t request = size * count;
    size_t got = get_bytes(fp, buf, request);
    return got == request ? count : got / size;
}

FZ_EXPORT size_t fread(void *buf, size_t size, size_t count, FILE *fp)
{
    if (size * count == 0 || !parkable(fp))
        return fz_real.fread(buf, size, count, fp);
    size_t r;
    LOCKED(fp, r, fread_parked(buf, size, count, fp));
    return r;
}

FZ_EXPORT size_t fread_unlocked(void *buf, size_t size, size_t count, FILE *fp)
{
    if (size * count == 0 || !parkable(fp))
        return fz_real.fread_unlocked(buf, size, count, fp);
    return fread_parked(buf, size, count, fp);
}

FZ_EXPORT size_t __fread_chk(void *buf, size_t bufsize, size_t size, size_t count, FILE *fp)
{
    size_t bytes;
    if (__builtin_mul_overflow(size, count, &bytes) || bytes > bufsize)
        __chk_fail();
    return fread(buf, size, count, fp);
}

FZ_EXPORT int fgetc(FILE *fp)
{
    if (fp->_IO_read_ptr < fp->_IO_read_end || !parkable(fp))
        return fz_real.fgetc(fp);
    int c;
    LOCKED(fp, c, get_byte(fp));
    return c;
}

FZ_EXPORT int getc(FILE *fp) __attribute__((alias("fgetc")));

FZ_EXPORT int fz_getchar(void) __asm__("getchar");
int fz_getchar(void)
{
    return fgetc(stdin);
}

static int get_char_unlocked(FILE *fp)
{
    if (fp->_IO_read_ptr < fp->_IO_read_end || !parkable(fp))
        return fz_real.fgetc_unlocked(fp);
    return get_byte(fp);
}

FZ_EXPORT int fz_fgetc_unlocked(FILE *fp) __asm__("fgetc_unlocked");
int fz_fgetc_unlocked(FILE *fp)
{
    return get_char_unlocked(fp);
}

FZ_EXPORT int fz_getc_unlocked(FILE *fp) __asm__("getc_unlocked");
int fz_getc_unlocked(FILE *fp)
{
    return get_char_unlocked(fp);
}

FZ_EXPORT int fz_getchar_unlocked(void) __asm__("getchar_unlocked");
int fz_getchar_unlocked(void)
{
    return get_char_unlocked(stdin);
}

/* What getc_unlocked and the other inline macros call when the buffer is
 * empty: the program's own code, so no lock is known to be held. */
FZ_EXPORT int __uflow(FILE *fp)
{
    return refill(fp, true);
}

FZ_EXPORT int __underflow(FILE *fp)
{
    return refill(fp, false);
}

/* scanf's refills happen inside glibc's scanner: the first one, the one
 * that usually waits for a request, gets its park here; one in the middle
 * of a conversion (input split across two packets) blocks the carrier as
 * before. */
static int scan_parked(FILE *fp, struct fz_fd *s, const char *fmt, va_list ap, bool isoc99)
{
    uint32_t seq;
    int err = 0;
    if (refill_reads(fp)) {
        flush_stdout_first(fp);
        err = wait_readable(fp, s, &seq);
    }
    if (err) {
        fp->_flags |= LIBIO_ERR_SEEN; /* the scanner's first read failed */
        errno = err;
        return EOF;
    }
    return isoc99 ? fz_real.__isoc99_vfscanf(fp, fmt, ap) : fz_real.vfscanf(fp, fmt, ap);
}

static int scan(FILE *fp, const char *fmt, va_list ap, bool isoc99)
{
    struct fz_fd *s = *fmt ? parkable(fp) : NULL;
    if (!s)
        return isoc99 ? fz_real.__isoc99_vfscanf(fp, fmt, ap) : fz_real.vfscanf(fp, fmt, ap);
    int r;
    LOCKED(fp, r, scan_parked(fp, s, fmt, ap, isoc99));
    return r;
}

/* <stdio.h> binds the plain names to the C99 variants (__isoc99_*), so
 * the plain ones, glibc's older scanning rules (%a as an allocation
 * flag), are defined under their symbol names. */
FZ_EXPORT int gnu_vfscanf(FILE *fp, const char *fmt, va_list ap) __asm__("vfscanf");
FZ_EXPORT int gnu_vscanf(const char *fmt, va_list ap) __asm__("vscanf");
FZ_EXPORT int gnu_fscanf(FILE *fp, const char *fmt, ...) __asm__("fscanf");
FZ_EXPORT int gnu_scanf(const char *fmt, ...) __asm__("scanf");

int gnu_vfscanf(FILE *fp, const char *fmt, va_list ap)
{
    return scan(fp, fmt, ap, false);
}

int gnu_vscanf(const char *fmt, va_list ap)
{
    return scan(stdin, fmt, ap, false);
}

int gnu_fscanf(FILE *fp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = scan(fp, fmt, ap, false);
    va_end(ap);
    return r;
}

int gnu_scanf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = scan(stdin, fmt, ap, false);
    va_end(ap);
    return r;
}

FZ_EXPORT int __isoc99_vfscanf(FILE *fp, const char *fmt, va_list ap)
{
    return scan(fp, fmt, ap, true);
}

FZ_EXPORT int __isoc99_vscanf(const char *fmt, va_list ap)
{
    return scan(stdin, fmt, ap, true);
}

FZ_EXPORT int __isoc99_fscanf(FILE *fp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = scan(fp, fmt, ap, true);
    va_end(ap);
    return r;
}

FZ_EXPORT int __isoc99_scanf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = scan(stdin, fmt, ap, true);
    va_end(ap);
    return r;
}

/* ---- writing ------------------------------------------------------------ */

/* glibc's write of len bytes at data for fp (its do_write): the bytes go
 * out through the interposed write(2), which parks while the pipe or
 * socket is full; a partial write goes on with the rest and a failure
 * sets the error flag, as glibc's write loop does.  Then the put area is
 * empty again, as glibc leaves it whatever was written.  Returns the
 * count written. */
static size_t do_write(FILE *fp, const char *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = write(fp->_fileno, data + done, len - done);
        if (r < 0) {
            fp->_flags |= LIBIO_ERR_SEEN;
            break;
        }
        done += (size_t)r;
    }
    if (fp->_offset >= 0)
        fp->_offset += (off64_t)done;
    fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end = fp->_IO_buf_base;
    fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_buf_base;
    fp->_IO_write_end =
        (fp->_flags & (LIBIO_LINE_BUF | LIBIO_UNBUFFERED)) ? fp->_IO_buf_base : fp->_IO_buf_end;
    return done;
}

/* glibc writes at the position after what was read; a stream that read
 * ahead seeks back first, which fails on a pipe or socket without writing
 * anything: then the real function, which fails the same way. */
static bool writes_in_place(FILE *fp)
{
    return (fp->_flags & LIBIO_IS_APPENDING) || fp->_IO_read_end == fp->_IO_write_base;
}

/* Write out the put area (glibc's do_flush).  0 or EOF. */
static int flush_out(FILE *fp)
{
    size_t pending = (size_t)(fp->_IO_write_ptr - fp->_IO_write_base);
    if (pending == 0)
        return 0;
    if (!writes_in_place(fp))
        return fz_real.__overflow(fp, EOF);
    return do_write(fp, fp->_IO_write_base, pending) == pending ? 0 : EOF;
}

/* glibc's overflow(fp, EOF): enter put mode (which never writes: nothing
 * is pending then) or write the put area out. */
static int overflow_eof(FILE *fp)
{
    if (!(fp->_flags & LIBIO_CURRENTLY_PUTTING) || fp->_IO_write_base == NULL)
        return fz_real.__overflow(fp, EOF);
    return flush_out(fp);
}

/* glibc's overflow(fp, ch): ch goes into the buffer, flushed first when
 * full, and after it when unbuffered or at a newline when line-buffered. */
static int put_overflow(FILE *fp, int ch)
{
    if (!(fp->_flags & LIBIO_CURRENTLY_PUTTING) || fp->_IO_write_base == NULL)
        if (fz_real.__overflow(fp, EOF) == EOF)
            return EOF;
    if (fp->_IO_write_ptr == fp->_IO_buf_end && flush_out(fp) == EOF)
        return EOF;
    *fp->_IO_write_ptr++ = (char)ch;
    if (((fp->_flags & LIBIO_UNBUFFERED) || ((fp->_flags & LIBIO_LINE_BUF) && ch == '\n')) &&
        flush_out(fp) == EOF)
        return EOF;
    return (unsigned char)ch;
}

/* glibc's put loop for what is left after the direct write (its
 * default_xsputn): fill the put area, one overflow per full area. */
static size_t put_rest(FILE *fp, const char *s, size_t n)
{
    size_t more = n;
    for (;;) {
        if (fp->_IO_write_ptr < fp->_IO_write_end) {
            size_t count = (size_t)(fp->_IO_write_end - fp->_IO_write_ptr);
            if (count > more)
                count = more;
            memcpy(fp->_IO_write_ptr, s, count);
            fp->_IO_write_ptr += count;
            s += count;
            more -= count;
        }
        if (more == 0 || put_overflow(fp, (unsigned char)*s++) == EOF)
            break;
        more--;
    }
    return n - more;
}

/* glibc's fwrite of n bytes into fp (its file xsputn), every write(2) it
 * would make made with the fiber parking instead.  Returns the bytes
 * taken, or (size_t)EOF when all were taken but the flush failed. */
static size_t put_bytes(FILE *fp, const char *s, size_t n)
{
    size_t to_do = n, count = 0;
    bool must_flush = false;
    if (n == 0)
        return 0;
    if ((fp->_flags & LIBIO_LINE_BUF) && (fp->_flags & LIBIO_CURRENTLY_PUTTING)) {
        count = (size_t)(fp->_IO_buf_end - fp->_IO_write_ptr);
        if (count >= n) {
            const char *nl = memrchr(s, '\n', n);
            if (nl) {
                count = (size_t)(nl - s) + 1;
                must_flush = true;
            }
        }
    } else if (fp->_IO_write_end > fp->_IO_write_ptr) {
        count = (size_t)(fp->_IO_write_end - fp->_IO_write_ptr);
    }
    if (count > 0) {
        if (count > to_do)
            count = to_do;
        memcpy(fp->_IO_write_ptr, s, count);
        fp->_IO_write_ptr += count;
        s += count;
        to_do -= count;
    }
    if (to_do == 0 && !must_flush)
        return n;
    if (overflow_eof(fp) == EOF)
        return to_do == 0 ? (size_t)EOF : n - to_do;
    size_t block = (size_t)(fp->_IO_buf_end - fp->_IO_buf_base);
    size_t direct = to_do - (block >= 128 ? to_do % block : 0);
    if (direct) {
        if (!writes_in_place(fp)) /* cannot happen after a flush; to be safe */
            return n - to_do + fz_real.fwrite_unlocked(s, 1, to_do, fp);
        size_t w = do_write(fp, s, direct);
        to_do -= w;
        if (w < direct)
            return n - to_do;
        s += direct;
    }
    if (to_do)
        to_do -= put_rest(fp, s, to_do);
    return n - to_do;
}

static size_t fwrite_parked(const void *buf, size_t size, size_t count, FILE *fp)
{
    size_t request = size * count;
    orient_bytes(fp);
    size_t written = put_bytes(fp, buf, request);
    return written == request || written == (size_t)EOF ? count : written / size;
}

/* Will this put of n bytes stay in fp's buffer?  Then glibc's own call,
 * which makes no system call, is used as is. */
static bool fits(FILE *fp, const char *s, size_t n)
{
    if ((fp->_flags & LIBIO_LINE_BUF) && (fp->_flags & LIBIO_CURRENTLY_PUTTING))
        return (size_t)(fp->_IO_buf_end - fp->_IO_write_ptr) >= n && !memchr(s, '\n', n);
    return fp->_IO_write_end > fp->_IO_write_ptr &&
           (size_t)(fp->_IO_write_end - fp->_IO_write_ptr) >= n;
}

FZ_EXPORT size_t fwrite(const void *buf, size_t size, size_t count, FILE *fp)
{
    size_t request = size * count;
    if (request == 0 || fits(fp, buf, request) || !parkable_out(fp))
        return fz_real.fwrite(buf, size, count, fp);
    size_t r;
    LOCKED(fp, r, fwrite_parked(buf, size, count, fp));
    return r;
}

FZ_EXPORT size_t fwrite_unlocked(const void *buf, size_t size, size_t count, FILE *fp)
{
    size_t request = size * count;
    if (request == 0 || fits(fp, buf, request) || !parkable_out(fp))
        return fz_real.fwrite_unlocked(buf, size, count, fp);
    return fwrite_parked(buf, size, count, fp);
}

static int fputs_parked(const char *str, FILE *fp)
{
    size_t len = strlen(str);
    orient_bytes(fp);
    return put_bytes(fp, str, len) == len ? 1 : EOF;
}

FZ_EXPORT int fputs(const char *str, FILE *fp)
{
    if (fits(fp, str, strlen(str)) || !parkable_out(fp))
        return fz_real.fputs(str, fp);
    int r;
    LOCKED(fp, r, fputs_parked(str, fp));
    return r;
}

FZ_EXPORT int fputs_unlocked(const char *str, FILE *fp)
{
    if (fits(fp, str, strlen(str)) || !parkable_out(fp))
        return fz_real.fputs_unlocked(str, fp);
    return fputs_parked(str, fp);
}

static int puts_parked(const char *str, FILE *fp)
{
    size_t len = strlen(str);
    orient_bytes(fp);
    if (put_bytes(fp, str, len) != len)
        return EOF;
    if (fp->_IO_write_ptr < fp->_IO_write_end)
        *fp->_IO_write_ptr++ = '\n';
    else if (put_overflow(fp, '\n') == EOF)
        return EOF;
    return len + 1 > INT_MAX ? INT_MAX : (int)(len + 1);
}

FZ_EXPORT int puts(const char *str)
{
    if (!parkable_out(stdout))
        return fz_real.puts(str);
    int r;
    LOCKED(stdout, r, puts_parked(str, stdout));
    return r;
}

static int put_char(int c, FILE *fp)
{
    if (fp->_IO_write_ptr < fp->_IO_write_end)
        return (unsigned char)(*fp->_IO_write_ptr++ = (char)c);
    orient_bytes(fp); /* as glibc's __overflow */
    return put_overflow(fp, (unsigned char)c);
}

FZ_EXPORT int fputc(int c, FILE *fp)
{
    if (fp->_IO_write_ptr < fp->_IO_write_end || !parkable_out(fp))
        return fz_real.fputc(c, fp);
    int r;
    LOCKED(fp, r, put_char(c, fp));
    return r;
}

FZ_EXPORT int putc(int c, FILE *fp) __attribute__((alias("fputc")));

FZ_EXPORT int fz_putchar(int c) __asm__("putchar");
int fz_putchar(int c)
{
    return fputc(c, stdout);
}

static int put_char_unlocked(int c, FILE *fp)
{
    if (fp->_IO_write_ptr < fp->_IO_write_end || !parkable_out(fp))
        return fz_real.fputc_unlocked(c, fp);
    return put_char(c, fp);
}

FZ_EXPORT int fz_fputc_unlocked(int c, FILE *fp) __asm__("fputc_unlocked");
int fz_fputc_unlocked(int c, FILE *fp)
{
    return put_char_unlocked(c, fp);
}

FZ_EXPORT int fz_putc_unlocked(int c, FILE *fp) __asm__("putc_unlocked");
int fz_putc_unlocked(int c, FILE *fp)
{
    return put_char_unlocked(c, fp);
}

FZ_EXPORT int fz_putchar_unlocked(int c) __asm__("putchar_unlocked");
int fz_putchar_unlocked(int c)
{
    return put_char_unlocked(c, stdout);
}

/* What putc_unlocked and the other inline macros call on a full buffer. */
FZ_EXPORT int __overflow(FILE *fp, int ch)
{
    if (!parkable_out(fp))
        return fz_real.__overflow(fp, ch);
    orient_bytes(fp);
    return ch == EOF ? overflow_eof(fp) : put_overflow(fp, ch);
}

/* fflush(NULL) (every stream) stays glibc's. */
FZ_EXPORT int fflush(FILE *fp)
{
    if (!fp || fp->_IO_write_ptr <= fp->_IO_write_base || !parkable_out(fp))
        return fz_real.fflush(fp);
    int r;
    LOCKED(fp, r, flush_out(fp) == EOF ? EOF : fz_real.fflush_unlocked(fp));
    return r;
}

FZ_EXPORT int fflush_unlocked(FILE *fp)
{
    if (!fp || fp->_IO_write_ptr <= fp->_IO_write_base || !parkable_out(fp))
        return fz_real.fflush_unlocked(fp);
    return flush_out(fp) == EOF ? EOF : fz_real.fflush_unlocked(fp);
}

static size_t put_formatted(FILE *fp, const char *buf, size_t n)
{
    orient_bytes(fp);
    return put_bytes(fp, buf, n);
}

/* printf and friends: formatted here with glibc's own formatter (the
 * same bytes, %n and errno included; `flag` > 0 is _FORTIFY_SOURCE's
 * checking level, < 0 none), then put as one fwrite. */
static int print(FILE *fp, int flag, const char *fmt, va_list ap)
{
    if (!parkable_out(fp))
        return flag < 0 ? fz_real.vfprintf(fp, fmt, ap) : fz_real.__vfprintf_chk(fp, flag, fmt, ap);
    char local[1024], *buf = local;
    va_list again;
    va_copy(again, ap);
    int n = flag < 0 ? vsnprintf(local, sizeof local, fmt, ap)
                     : __vsnprintf_chk(local, sizeof local, flag, sizeof local, fmt, ap);
    if (n >= (int)sizeof local) {
        buf = malloc((size_t)n + 1);
        if (buf && flag < 0)
            vsnprintf(buf, (size_t)n + 1, fmt, again);
        else if (buf)
            __vsnprintf_chk(buf, (size_t)n + 1, flag, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (n < 0 || !buf)
        return -1; /* vsnprintf's errno (EOVERFLOW, EILSEQ) or ENOMEM */
    size_t w;
    LOCKED(fp, w, put_formatted(fp, buf, (size_t)n));
    if (buf != local)
        free(buf);
    return w == (size_t)n ? n : -1;
}

FZ_EXPORT int vfprintf(FILE *fp, const char *fmt, va_list ap)
{
    return print(fp, -1, fmt, ap);
}

FZ_EXPORT int fz_vprintf(const char *fmt, va_list ap) __asm__("vprintf");
int fz_vprintf(const char *fmt, va_list ap)
{
    return print(stdout, -1, fmt, ap);
}

FZ_EXPORT int fprintf(FILE *fp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = print(fp, -1, fmt, ap);
    va_end(ap);
    return r;
}

FZ_EXPORT int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = print(stdout, -1, fmt, ap);
    va_end(ap);
    return r;
}

/* What programs built with _FORTIFY_SOURCE call instead. */
FZ_EXPORT int __vfprintf_chk(FILE *fp, int flag, const char *fmt, va_list ap)
{
    return print(fp, flag, fmt, ap);
}

FZ_EXPORT int __vprintf_chk(int flag, const char *fmt, va_list ap)
{
    return print(stdout, flag, fmt, ap);
}

FZ_EXPORT int __fprintf_chk(FILE *fp, int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = print(fp, flag, fmt, ap);
    va_end(ap);
    return r;
}

FZ_EXPORT int __printf_chk(int flag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = print(stdout, flag, fmt, ap);
    va_end(ap);
    return r;
}
