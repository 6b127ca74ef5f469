/* Name resolution in the blocking pool: the resolver reads files and talks
 * to DNS servers with blocking calls we cannot see.  Lookups that only
 * convert numbers (numeric host and service) are made in place: they never
 * block, and servers make them once per connection.
 *
 * Made on a pool thread, a lookup sees that thread's resolver state, not
 * the caller's: res_init() or _res changes made by the program apply to
 * lookups the program makes while fiberize is off (FIBERIZE_HOOKS=-pool).
 */
#include <netdb.h>
#include "syscalls/offload.h"

FZ_OFFLOAD(static, int, pool_getaddrinfo, fz_real.getaddrinfo, FZ_OFFLOAD_PLAIN,
           (const char *, node), (const char *, service), (const struct addrinfo *, hints),
           (struct addrinfo **, res))

FZ_OFFLOAD(static, int, pool_getnameinfo, fz_real.getnameinfo, FZ_OFFLOAD_PLAIN,
           (const struct sockaddr *, sa), (socklen_t, salen), (char *, host), (socklen_t, hostlen),
           (char *, serv), (socklen_t, servlen), (int, flags))

FZ_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res)
{
    int flags = hints ? hints->ai_flags : 0;
    bool numeric = (!node || (flags & AI_NUMERICHOST)) && (!service || (flags & AI_NUMERICSERV));
    if (numeric || !fz_hook_active(FZ_HOOK_POOL))
        return fz_real.getaddrinfo(node, service, hints, res);
    return pool_getaddrinfo(node, service, hints, res);
}

FZ_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                          char *serv, socklen_t servlen, int flags)
{
    bool numeric = (!host || (flags & NI_NUMERICHOST)) && (!serv || (flags & NI_NUMERICSERV));
    if (numeric || !fz_hook_active(FZ_HOOK_POOL))
        return fz_real.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    return pool_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
}

FZ_OFFLOADED(struct hostent *, gethostbyname, FZ_OFFLOAD_PLAIN, (const char *, name))

FZ_OFFLOADED(struct hostent *, gethostbyname2, FZ_OFFLOAD_PLAIN, (const char *, name), (int, af))

FZ_OFFLOADED(struct hostent *, gethostbyaddr, FZ_OFFLOAD_PLAIN, (const void *, addr),
             (socklen_t, len), (int, type))

FZ_OFFLOADED(int, gethostbyname_r, FZ_OFFLOAD_PLAIN, (const char *, name), (struct hostent *, ret),
             (char *, buf), (size_t, buflen), (struct hostent **, result), (int *, h_errnop))

FZ_OFFLOADED(int, gethostbyname2_r, FZ_OFFLOAD_PLAIN, (const char *, name), (int, af),
             (struct hostent *, ret), (char *, buf), (size_t, buflen), (struct hostent **, result),
             (int *, h_errnop))

FZ_OFFLOADED(int, gethostbyaddr_r, FZ_OFFLOAD_PLAIN, (const void *, addr), (socklen_t, len),
             (int, type), (struct hostent *, ret), (char *, buf), (size_t, buflen),
             (struct hostent **, result), (int *, h_errnop))
