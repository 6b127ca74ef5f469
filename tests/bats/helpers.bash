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

# `run --separate-stderr` and `run -N` need bats 1.5; saying so silences the
# warning bats prints otherwise.
bats_require_minimum_version 1.5.0

FIBERIZE_BUILD=$(cd -P "${FIBERIZE_BUILD:-$BATS_TEST_DIRNAME/../../build}" && pwd -P) ||
    FIBERIZE_BUILD=/nonexistent-fiberize-build
export FIBERIZE_BUILD
export FZ=$FIBERIZE_BUILD/bin/fiberize
export PROG=$FIBERIZE_BUILD/tests/programs

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
    local native_status=0 fiber_status=0
    mkdir -p "$dir"

    # stdin is /dev/null for both runs: a program reading input would
    # otherwise see it only in the first run.
    _fz_timeout "$PROG/$name" "$@" </dev/null >"$dir/native.out" 2>"$dir/native.err" ||
        native_status=$?
    _fz_timeout "$FZ" -- "$PROG/$name" "$@" </dev/null >"$dir/fiber.out" 2>"$dir/fiber.err" ||
        fiber_status=$?

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
    local name=$1
    shift
    run "${run_flags[@]}" _fz_timeout "$FZ" -- "$PROG/$name" "$@"
}
