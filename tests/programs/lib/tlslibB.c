// tlslibB: loaded only by dlopen (tls_dlopen, tls_dlclose).  Its block is
// bigger than tlslibA's, so tls_dlclose can hand A's module id to it.  Its
// __thread variables start non-zero, so a thread that existed before the
// dlopen must still see the initial values: tlsB_gd through __tls_get_addr
// (dynamic TLS, allocated lazily per thread), tlsB_ie in the static TLS
// surplus (initial-exec, initialised for every live thread by ld.so at dlopen
// time).  Having an initial-exec variable puts the whole block in static TLS.
#define TLSB_WORDS 64 // 512 bytes: bigger than tlslibA's block

__thread int tlsB_gd = 1234;
#ifdef __GLIBC__
__thread int tlsB_ie __attribute__((tls_model("initial-exec"))) = 5678;
#else
/* musl's dlopen refuses initial-exec TLS in a library loaded late: on musl
 * both variables are general-dynamic, which is what its programs can use */
__thread int tlsB_ie = 5678;
#endif
__thread long tlsB_words[TLSB_WORDS] = {11, 22, 33};
__thread int tlsB_zero; // .tbss: starts at 0

int tlsB_get_gd(void)
{
    return tlsB_gd;
}

int tlsB_get_ie(void)
{
    return tlsB_ie;
}

// 1 if every variable still holds its initial value.
int tlsB_pristine(void)
{
    int ok = tlsB_gd == 1234 && tlsB_ie == 5678 && tlsB_zero == 0;
    ok &= tlsB_words[0] == 11 && tlsB_words[1] == 22 && tlsB_words[2] == 33;
    for (int i = 3; i < TLSB_WORDS; i++)
        ok &= tlsB_words[i] == 0;
    return ok;
}

void tlsB_set(int v)
{
    tlsB_gd = v;
    tlsB_ie = v + 1;
    tlsB_zero = v + 2;
    for (int i = 0; i < TLSB_WORDS; i++)
        tlsB_words[i] = (long)v * TLSB_WORDS + i;
}

// 1 if every variable holds what tlsB_set(v) stored.
int tlsB_check(int v)
{
    int ok = tlsB_gd == v && tlsB_ie == v + 1 && tlsB_zero == v + 2;
    for (int i = 0; i < TLSB_WORDS; i++)
        ok &= tlsB_words[i] == (long)v * TLSB_WORDS + i;
    return ok;
}

void *tlsB_addr(void)
{
    return &tlsB_gd;
}

void *tlsB_ie_addr(void)
{
    return &tlsB_ie;
}
