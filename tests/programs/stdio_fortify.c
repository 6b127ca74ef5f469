/* stdio_lines built with _FORTIFY_SOURCE=2, as distributions build their
 * packages: its printf family then calls glibc's __printf_chk and
 * __fprintf_chk, which fiberize interposes as well. */
#define _FORTIFY_SOURCE 2
#include "stdio_lines.c"
