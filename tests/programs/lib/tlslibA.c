// tlslibA: a shared library linked into tls_threads with its own __thread
// variables.  The program reads tlsA_id directly (initial-exec from the
// executable) and through the accessors (general-dynamic inside this -fPIC
// library), so both TLS access paths of a startup-loaded library are checked.
#define TLSA_WORDS 32

__thread int tlsA_id;         // .tbss of the library
__thread int tlsA_init = 777; // .tdata of the library
__thread long tlsA_words[TLSA_WORDS];

void tlsA_set(int v)
{
    tlsA_id = v;
    for (int i = 0; i < TLSA_WORDS; i++)
        tlsA_words[i] = (long)v * TLSA_WORDS + i;
}

// 1 if every variable of this library holds what tlsA_set(v) stored.
int tlsA_check(int v)
{
    int ok = tlsA_id == v && tlsA_init == 777;
    for (int i = 0; i < TLSA_WORDS; i++)
        ok &= tlsA_words[i] == (long)v * TLSA_WORDS + i;
    return ok;
}

int tlsA_get(void)
{
    return tlsA_id;
}

int *tlsA_id_addr(void)
{
    return &tlsA_id;
}

int *tlsA_init_addr(void)
{
    return &tlsA_init;
}

// 1 if every variable still holds its initial value (a fresh thread).
int tlsA_pristine(void)
{
    int ok = tlsA_id == 0 && tlsA_init == 777;
    for (int i = 0; i < TLSA_WORDS; i++)
        ok &= tlsA_words[i] == 0;
    return ok;
}
