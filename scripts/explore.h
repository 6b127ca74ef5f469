/* fiberize --explore (scripts/explore.c). */
#ifndef FZ_EXPLORE_H
#define FZ_EXPLORE_H

/* Run cmd (the library already in LD_PRELOAD) under seeds 1..k.  steps: PCT's
 * k if the user gave it, else 0 (a first run counts it); depth: the user's
 * --depth, or 0 (only for the command line it prints).  Returns the exit
 * status for fiberize: 0 all alike, 1 a seed differed, 125 failure. */
int fz_explore(unsigned long long k, char **cmd, unsigned long long steps, unsigned depth);

#endif
