# Shared helpers for the bats suites: `load helpers` at the top of a file.
#
#   FZ      absolute path of the fiberize command under test
#   PROG    absolute path of the built test programs
#   compare_native NAME [ARGS...]   same stdout and status natively and fiberized
#   run_fiberized [RUN-FLAGS] NAME [ARGS...]   like `run`, under fiberize
#
# FIBERIZE_BUILD (set by scripts/check.sh) names the build directory; when a
# file is run by hand it defaults to build/ in this tree.  FZ_TIMEOUT bounds
# every program run (seconds, default 120).
#
# FZ_GLIBC=V runs every test program, natively and fiberized, on another
# glibc: through the ld.so of $FZ_GLIBC_ROOT/V (default ../shared/glibc
# beside the clone, which holds 2.35, 2.39, 2.41 built from upstream tags;
# its README says how).  scripts/check.sh runs the program suites once per
# version found there.  A suite that starts a test program by hand uses
# fz_prog_cmd.  A program that glibc cannot load (it needs a newer symbol
# version, e.g. Debian 12's libstdc++ under 2.35) is skipped with ld.so's
# reason, by compare_native and run_fiberized.
#
# FZ_LIBC=musl runs the same tests on the programs built with musl-gcc
# ($FIBERIZE_BUILD/musl/tests/programs, make's musl round): fiberize then
# preloads libfiberize-musl.so.  A program that is not built for musl (its
# source says "// libc: glibc-only (why)", or it is C++) is skipped with
# that reason, by compare_native, run_fiberized and fz_prog_cmd's callers
# through fz_skip_unloadable.  scripts/check.sh runs the program suites
# once more this way when libfiberize-musl.so is built.

# `run --separate-stderr` and `run -N` need bats 1.5; saying so silences the
# warning bats prints otherwise.
bats_require_minimum_version 1.5.0

FIBERIZE_BUILD=$(cd -P "${FIBERIZE_BUILD:-$BATS_TEST_DIRNAME/../../build}" && pwd -P) ||
    FIBERIZE_BUILD=/nonexistent-fiberize-build
export FIBERIZE_BUILD
export FZ=$FIBERIZE_BUILD/bin/fiberize
if [[ ${FZ_LIBC:-} == musl ]]; then
    export PROG=$FIBERIZE_BUILD/musl/tests/programs
else
    export PROG=$FIBERIZE_BUILD/tests/programs
fi

FZ_GLIBC_ROOT=${FZ_GLIBC_ROOT:-$BATS_TEST_DIRNAME/../../../shared/glibc}
_fz_loader=()
if [[ -n ${FZ_GLIBC:-} ]]; then
    if _fz_glibc_lib=$(cd -P "$FZ_GLIBC_ROOT/$FZ_GLIBC/lib" 2>/dev/null && pwd -P) &&
        [[ -x $_fz_glibc_lib/ld-linux-x86-64.so.2 ]]; then
        _fz_loader=("$_fz_glibc_lib/ld-linux-x86-64.so.2" --library-path "$_fz_glibc_lib")
    else
        # programs fail to start rather than quietly run on the system's glibc
        _fz_loader=(/nonexistent-glibc-"$FZ_GLIBC"/ld.so)
        _fz_glibc_missing="FZ_GLIBC=$FZ_GLIBC: no $FZ_GLIBC_ROOT/$FZ_GLIBC/lib/ld-linux-x86-64.so.2"
    fi
fi

# fz_prog_cmd PROGRAM: set the array fz_cmd to the command that runs
# PROGRAM (a name in $PROG, or an absolute path) on the glibc under test.
# Put "$FZ" -- in front to run it fiberized.
fz_prog_cmd() {
    local path=$1
    [[ $path == /* ]] || path=$PROG/$path
    if [[ ${#_fz_loader[@]} -eq 0 ]]; then
        fz_cmd=("$path")
    else
        fz_cmd=("${_fz_loader[@]}" --argv0 "$path" "$path")
    fi
}

# Skip the test when PROGRAM is not built for musl (FZ_LIBC=musl), with the
# reason its source gives.
fz_skip_not_musl() {
    [[ ${FZ_LIBC:-} == musl ]] || return 0
    local path=$1 name src why
    [[ $path == /* ]] || path=$PROG/$path
    [[ -e $path ]] && return 0
    name=${path##*/}
    name=${name#lib}
    name=${name%.so}
    src=$BATS_TEST_DIRNAME/../programs/$name.c
    [[ -f $src ]] || src=$BATS_TEST_DIRNAME/../programs/lib/$name.c
    if [[ -f $BATS_TEST_DIRNAME/../programs/$name.cc ]]; then
        skip "${path##*/} is C++: glibc-only (no musl libstdc++ on Debian)"
    elif why=$(sed -n 's,^// libc: glibc-only ,,p' "$src" 2>/dev/null) && [[ -n $why ]]; then
        skip "${path##*/} is glibc-only $why"
    fi
}

# fz_skip_on_musl WHY: skip a test of glibc's own behaviour in the musl
# round (FZ_LIBC=musl), saying why.
fz_skip_on_musl() {
    [[ ${FZ_LIBC:-} != musl ]] || skip "glibc behaviour, not musl's: $1"
}

# Skip the test when the glibc under test cannot load PROGRAM (a symbol
# version it lacks, in the program or a system library it needs), or when
# PROGRAM is not built for the musl round.
fz_skip_unloadable() {
    fz_skip_not_musl "$1"
    [[ ${#_fz_loader[@]} -gt 0 ]] || return 0
    local path=$1 why
    [[ $path == /* ]] || path=$PROG/$path
    why=$("${_fz_loader[@]}" --list "$path" 2>&1 | grep -m1 "version .GLIBC_[0-9.]*' not found") ||
        return 0
    skip "glibc $FZ_GLIBC cannot load ${path##*/}:${why#*:}"
}

# timeout(1) with a kill after a grace period: a hung fiberized program must
# not hang the whole suite.
_fz_timeout() {
    timeout --kill-after=10 "${FZ_TIMEOUT:-120}" "$@"
}

# 124 is timeout's status; 137 is SIGKILL, which --kill-after sends.
_fz_timed_out() {
    [[ $1 == 124 || $1 == 137 ]]
}

# Show a captured file under a heading, so failures read well in TAP output.
_fz_show() {
    echo "--- $1:"
    cat -- "$2"
}

compare_native() {
    local name=$1
    shift
    local dir=$BATS_TEST_TMPDIR/compare_native.$name
    local native_status=0 fiber_status=0 fz_cmd
    mkdir -p "$dir"
    # both runs failing to start would compare equal
    [[ -z ${_fz_glibc_missing:-} ]] || { echo "$_fz_glibc_missing"; return 1; }
    fz_skip_unloadable "$name"
    fz_prog_cmd "$name"

    # stdin is /dev/null for both runs: a program reading input would
    # otherwise see it only in the first run.
    _fz_timeout "${fz_cmd[@]}" "$@" </dev/null >"$dir/native.out" 2>"$dir/native.err" ||
        native_status=$?
    _fz_timeout "$FZ" -- "${fz_cmd[@]}" "$@" </dev/null >"$dir/fiber.out" 2>"$dir/fiber.err" ||
        fiber_status=$?

    # a program missing from the build fails to start both ways, alike
    if [[ $native_status == 126 || $native_status == 127 ]]; then
        echo "compare_native $name: the native run could not start (status $native_status):"
        cat -- "$dir/native.err"
        return 1
    fi
    # a runtime that turned itself off would pass every comparison
    if grep -q '^fiberize: runtime off' "$dir/fiber.err"; then
        echo "compare_native $name $*: the fiberized run had no runtime${FZ_GLIBC:+ (glibc $FZ_GLIBC)}${FZ_LIBC:+ ($FZ_LIBC)}:"
        grep '^fiberize: runtime off' "$dir/fiber.err"
        return 1
    fi
    if ! _fz_timed_out "$native_status" && ! _fz_timed_out "$fiber_status" &&
        [[ $native_status == "$fiber_status" ]] && cmp -s "$dir/native.out" "$dir/fiber.out"; then
        return 0
    fi
    echo "compare_native $name $*: fiberized run differs from the native run"
    _fz_timed_out "$native_status" && echo "native run timed out after ${FZ_TIMEOUT:-120}s"
    _fz_timed_out "$fiber_status" && echo "fiberized run timed out after ${FZ_TIMEOUT:-120}s"
    echo "status: native $native_status, fiberized $fiber_status"
    _fz_show "native stdout" "$dir/native.out"
    _fz_show "fiberized stdout" "$dir/fiber.out"
    echo "--- diff native fiberized:"
    diff -- "$dir/native.out" "$dir/fiber.out" || true # differing is the point here
    _fz_show "fiberized stderr" "$dir/fiber.err"
    return 1
}

# Leading arguments starting with '-' or '!' (e.g. --separate-stderr, -0)
# are passed on to bats `run`; the rest name the program and its arguments.
run_fiberized() {
    local run_flags=()
    while [[ $# -gt 0 && ($1 == -* || $1 == '!') ]]; do
        run_flags+=("$1")
        shift
    done
    local name=$1 fz_cmd
    shift
    fz_skip_unloadable "$name"
    fz_prog_cmd "$name"
    run "${run_flags[@]}" _fz_timeout "$FZ" -- "${fz_cmd[@]}" "$@"
}
