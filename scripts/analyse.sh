#!/usr/bin/env bash
# The checks that read the code rather than run it, one line each:
#   format     clang-format --dry-run --Werror over every C and C++ file
#   cppcheck   static analysis of the library with the project's include path
#   layers     runtime/ uses nothing from syscalls/ or preload/ (check-layers.sh),
#              in libfiberize.so and, when built, libfiberize-musl.so
#   clang      the library and command build with clang, warnings as errors
# Each prints "analyse: ok - NAME" or "analyse: FAILED - NAME" after its
# output; the exit status is 1 if any failed.  Run after `make` (layers
# reads BUILD's objects, default build).  CI (.ci/run) runs it before the tests.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
BUILD=${BUILD:-build}
CLANG_BUILD=${CLANG_BUILD:-build-clang}

failed=()

# analysis NAME COMMAND...: run it, report, remember a failure.
analysis() {
    local name=$1
    shift
    if "$@"; then
        echo "analyse: ok - $name"
    else
        echo "analyse: FAILED - $name (command: $*)"
        failed+=("$name")
    fi
}

need() {
    command -v "$1" >/dev/null || {
        echo "analyse: $1 is not installed (scripts/deps.sh installs it)"
        return 1
    }
}

run_format() {
    need clang-format && make -s format-check
}

# Findings of every severity but "information"; scripts/cppcheck.supp lists
# the suppressed ones with their reasons.  FZ_CHECKS=1 so the asserts'
# conditions are analysed too, FZ_ASAN to cover asan.c's body.
# Each library's sources apart (the files of the other libc left out), as
# each is linked: analysed together, one libc's caller would be matched
# with the other's definition across files.
run_cppcheck() {
    need cppcheck || return 1
    local defs libc other files libc_def
    for libc in glibc musl; do
        # the seams' #ifdef __GLIBC__ as the compiler sees it for this library
        other=musl libc_def=-D__GLIBC__
        [[ $libc == musl ]] && other=glibc libc_def=-U__GLIBC__
        mapfile -t files < <(ls preload/*.c runtime/*.c syscalls/*.c | grep -v "_$other\.c\$")
        [[ $libc == glibc ]] && files+=(scripts/fiberize.c scripts/explore.c)
        for defs in "-DFZ_CHECKS=1" "-DFZ_CHECKS=1 -DFZ_ASAN"; do
            # shellcheck disable=SC2086 # defs is two words on purpose
            cppcheck -q --error-exitcode=1 --enable=style,warning,performance,portability \
                --std=c11 -I. -D_GNU_SOURCE "$libc_def" $defs --inline-suppr \
                --suppressions-list=scripts/cppcheck.supp "${files[@]}" ||
                { echo "cppcheck: the $libc library's sources ($defs)"; return 1; }
        done
    done
}

# The musl library's layers too, once it is built (make builds it when
# musl-gcc is installed).
run_layers() {
    scripts/check-layers.sh "$BUILD" glibc || return 1
    [[ ! -f $BUILD/libfiberize-musl.so ]] || scripts/check-layers.sh "$BUILD" musl
}

# The glibc library only: the musl one is musl-gcc's (gcc) in any build.
run_clang() {
    need clang && make -s -j2 CC=clang MUSL=0 BUILD="$CLANG_BUILD" WERROR=1 all
}

analysis format run_format
analysis cppcheck run_cppcheck
analysis layers run_layers
analysis clang run_clang

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "analyse: ${#failed[@]} failed: ${failed[*]}"
    exit 1
fi
echo "analyse: all passed"
