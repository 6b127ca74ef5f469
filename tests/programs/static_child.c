// link: -static
/* A statically linked child: LD_PRELOAD means nothing to it, it just runs.
 * Prints its arguments and its blocked-signal mask. */
#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    sigset_t blocked;
    sigprocmask(SIG_BLOCK, NULL, &blocked);
    int n = 0;
    for (int sig = 1; sig < 65; sig++)
        n += sigismember(&blocked, sig) == 1;
    printf("static child:");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf(" (%d signals blocked)\n", n);
    return argc;
}
