#!/usr/bin/env bash
# Run every unit test binary and every bats file, stream their TAP output,
# then the program suites on the other glibcs and on musl, and end with
# exactly one summary line: "N passed, N failed[, N skipped]" (all rounds).
# Exits non-zero if anything failed.  Called by `make check` (BUILD is the
# build directory, default build).
#
# A suite that crashes, times out, prints no plan or runs fewer tests than
# it planned counts as one extra failure, so a broken suite can never look
# like a passing one.
set -uo pipefail

UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}   # seconds per unit test binary
BATS_TIMEOUT=${BATS_TIMEOUT:-1200} # seconds per bats file
KILL_GRACE=10                      # seconds between TERM and KILL when a suite times out

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
BUILD=${BUILD:-build}
if ! FIBERIZE_BUILD=$(cd -P "$BUILD" 2>/dev/null && pwd -P); then
    echo "check: build directory '$BUILD' does not exist (run make first)"
    echo "0 passed, 1 failed"
    exit 1
fi
export FIBERIZE_BUILD

passed=0 failed=0 skipped=0
problems=() # one line per suite-level failure, repeated before the summary

workdir=$(mktemp -d) || exit 2
suite_pid=
trap 'rm -rf "$workdir"' EXIT
# Interrupted: stop the running suite too (timeout forwards the signal to
# its whole process group), then report what was counted so far.
trap 'on_interrupt' INT TERM

on_interrupt() {
    [[ -n $suite_pid ]] && kill -TERM "$suite_pid" 2>/dev/null
    echo "check: interrupted"
    summary
    exit 130
}

# Per-suite counters, reset by run_suite.
s_results=0 s_failed=0 s_plan=

# Classify one line of a suite's stdout.  Only unindented lines count:
# TAP subtests and bats' failure details are indented or start with '#'.
count_line() {
    local line=$1
    if [[ $line =~ ^(not\ )?ok([[:space:]]|$) ]]; then
        s_results=$((s_results + 1))
        if [[ $line =~ \#[[:space:]]*[Ss][Kk][Ii][Pp]([[:space:]]|$) ]]; then
            skipped=$((skipped + 1))
        elif [[ $line =~ \#[[:space:]]*[Tt][Oo][Dd][Oo]([[:space:]]|$) ]]; then
            # TAP: a TODO test is expected to fail; count it as skipped.
            skipped=$((skipped + 1))
        elif [[ $line == not\ * ]]; then
            failed=$((failed + 1))
            s_failed=$((s_failed + 1))
        else
            passed=$((passed + 1))
        fi
    elif [[ -z $s_plan && $line =~ ^1\.\.([0-9]+) ]]; then
        s_plan=${BASH_REMATCH[1]}
    fi
}

# A suite-level failure: counted once, reported now and in the summary.
suite_problem() {
    failed=$((failed + 1))
    problems+=("$1")
    echo "# check: FAILED: $1"
}

# Judge how the suite ended; at most one extra failure per suite.
judge_suite() {
    local name=$1 limit=$2 status=$3
    if [[ $status -eq 124 || $status -eq 137 ]]; then
        suite_problem "$name timed out after ${limit}s"
    elif [[ $status -gt 128 ]]; then
        suite_problem "$name crashed (signal $((status - 128)))"
    elif [[ -z $s_plan ]]; then
        suite_problem "$name printed no TAP plan (status $status)"
    elif [[ $s_results -ne $s_plan ]]; then
        suite_problem "$name planned $s_plan tests but reported $s_results (status $status)"
    elif [[ $status -ne 0 && $s_failed -eq 0 ]]; then
        suite_problem "$name exited with status $status but reported no failure"
    fi
}

# run_suite NAME LIMIT COMMAND...: stream the suite's stdout to the terminal
# while counting it.  stderr goes straight to the terminal, uncounted, so a
# stray diagnostic can never be mistaken for a result.
run_suite() {
    local name=$1 limit=$2 status line
    shift 2
    s_results=0 s_failed=0 s_plan=
    echo "# check: $name"
    rm -f "$workdir/tap"
    mkfifo "$workdir/tap" || exit 2
    timeout --kill-after="$KILL_GRACE" "$limit" "$@" >"$workdir/tap" </dev/null &
    suite_pid=$!
    while IFS= read -r line || [[ -n $line ]]; do
        printf '%s\n' "$line"
        count_line "$line"
    done <"$workdir/tap"
    wait "$suite_pid" 2>/dev/null # judge_suite reports crashes; no job notice
    status=$?
    suite_pid=
    judge_suite "$name" "$limit" "$status"
}

run_unit_tests() {
    local bin
    for bin in "$BUILD"/tests/unit/test_*; do
        [[ -f $bin && -x $bin ]] || continue
        run_suite "$bin" "$UNIT_TIMEOUT" "$bin"
    done
}

run_bats_files() {
    local file
    for file in tests/bats/*.bats tests/programs/real/*.bats; do
        [[ -f $file ]] || continue
        if ! command -v bats >/dev/null; then
            suite_problem "$file not run: bats is not installed"
            continue
        fi
        run_suite "$file" "$BATS_TIMEOUT" bats --tap "$file"
    done
}

# The program suites once more on every other glibc found beside the clone
# (../shared/glibc/V/lib/ld-linux-x86-64.so.2; FZ_GLIBC in
# tests/bats/helpers.bash): each program runs natively and fiberized on V.
GLIBC_ROOT=${FZ_GLIBC_ROOT:-../shared/glibc}
GLIBC_SUITES="runtime tls sync_locks sync_waits io pool stdio"

run_other_glibcs() {
    local dir version suite
    for dir in "$GLIBC_ROOT"/*/; do
        [[ -x $dir/lib/ld-linux-x86-64.so.2 ]] || continue
        version=$(basename "$dir")
        for suite in $GLIBC_SUITES; do
            run_suite "tests/bats/$suite.bats (glibc $version)" "$BATS_TIMEOUT" \
                env FZ_GLIBC="$version" FZ_GLIBC_ROOT="$(cd -P "$GLIBC_ROOT" && pwd -P)" \
                bats --tap "tests/bats/$suite.bats"
        done
    done
}

# The program suites once more on the programs built with musl-gcc
# (FZ_LIBC=musl in tests/bats/helpers.bash), when make built
# libfiberize-musl.so: each runs natively and fiberized on musl.
MUSL_SUITES=${FZ_MUSL_SUITES:-"runtime tls sync_locks sync_waits io pool stdio fds wake identity sched_lifo"}

run_musl() {
    local suite
    if [[ ! -f $FIBERIZE_BUILD/libfiberize-musl.so ]]; then
        echo "# check: no libfiberize-musl.so in $BUILD (musl-gcc missing?): the musl round is not run"
        return
    fi
    for suite in $MUSL_SUITES; do
        run_suite "tests/bats/$suite.bats (musl)" "$BATS_TIMEOUT" \
            env FZ_LIBC=musl bats --tap "tests/bats/$suite.bats"
    done
}

summary() {
    local p
    for p in "${problems[@]}"; do
        echo "# check: FAILED: $p"
    done
    if [[ $skipped -gt 0 ]]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
}

run_unit_tests
run_bats_files
# make check-asan and check-ubsan: sanitizer builds are checked on the
# system glibc only (their runtimes are built against it; CI's time)
if [[ -n ${FZ_ASAN:-} || -n ${FZ_UBSAN:-} ]]; then
    echo "# check: the other glibcs' and musl's suites are not run with a sanitizer"
elif command -v bats >/dev/null; then
    run_other_glibcs
    run_musl
fi
summary
[[ $failed -eq 0 ]]
