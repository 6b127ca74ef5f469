#!/usr/bin/env bats
# Seeing inside a fiberized program: fiber dumps on a signal, the control
# socket behind `fiberize dump PID` / `fiberize stats PID`, the exit stats
# table and the gdb extension.  Dumps are compared with what the dumped
# program knows it did (tests/programs/dump_waits.c, checked by
# dump_check.py).

load helpers

# Start dump_waits fiberized in the background with the given environment
# (VAR=value words after the scale, then optionally -- and more program
# arguments); sets DW_PID (the program) and DW_PORT (its
# control port: connecting ends it).  Its stdout is $BATS_TEST_TMPDIR/out.
dw_start() {
    local scale=$1 vars=() args=()
    shift
    while [[ $# -gt 0 && $1 != -- ]]; do
        vars+=("$1")
        shift
    done
    [[ $# -gt 0 ]] && shift && args=("$@")
    env "${vars[@]}" timeout --kill-after=5 300 "$FZ" -- "$PROG/dump_waits" "$scale" "${args[@]}" \
        </dev/null >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
    DW_TIMEOUT_PID=$!
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q '^READY' "$BATS_TEST_TMPDIR/out" 2>/dev/null && break
        sleep 0.1
    done
    read -r _ DW_PID DW_PORT < <(grep '^READY' "$BATS_TEST_TMPDIR/out")
    [[ -n $DW_PID ]] || {
        echo "dump_waits did not get ready"
        cat "$BATS_TEST_TMPDIR/err"
        return 1
    }
}

# Let dump_waits finish (connect to its port) and return its status.
dw_finish() {
    exec 5<>"/dev/tcp/127.0.0.1/$DW_PORT" && exec 5>&-
    local status=0
    wait "$DW_TIMEOUT_PID" || status=$?
    return $status
}

# Wait for a complete dump in file $1.
await_dump() {
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q '^==== end of dump' "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "no complete dump in $1"
    return 1
}

dump_on_signal() {
    local workers=$1 scale=$2
    local dump=$BATS_TEST_TMPDIR/dump
    dw_start "$scale" FIBERIZE_WORKERS="$workers" FIBERIZE_DUMP_SIGNAL=USR2 \
        FIBERIZE_DUMP_FILE="$dump"
    kill -USR2 "$DW_PID"
    await_dump "$dump" || { dw_finish || true; return 1; }
    local status=0
    dw_finish || status=$?
    python3 "$BATS_TEST_DIRNAME/dump_check.py" "$BATS_TEST_TMPDIR/out" "$dump" || {
        sed -n '1,40p' "$dump"
        return 1
    }
    # the dump stopped nothing: every fiber went on and the program ended well
    [[ $status == 0 ]] || { echo "dump_waits exited $status"; cat "$BATS_TEST_TMPDIR/err"; return 1; }
}

@test "dump on FIBERIZE_DUMP_SIGNAL: 1,000 threads parked 8 ways + 2 spinning, 1 carrier" {
    dump_on_signal 1 1
}

@test "dump on FIBERIZE_DUMP_SIGNAL: 1,000 threads parked 8 ways + 2 spinning, 2 carriers" {
    dump_on_signal 2 1
}

@test "dump: two dumps in a row of the same program agree" {
    local dump=$BATS_TEST_TMPDIR/dump
    dw_start 10 FIBERIZE_WORKERS=2 FIBERIZE_DUMP_SIGNAL=USR2 FIBERIZE_DUMP_FILE="$dump"
    kill -USR2 "$DW_PID"
    await_dump "$dump"
    : >"$dump"
    kill -USR2 "$DW_PID"
    await_dump "$dump"
    dw_finish
    python3 "$BATS_TEST_DIRNAME/dump_check.py" "$BATS_TEST_TMPDIR/out" "$dump"
}

@test "dump goes to stderr without FIBERIZE_DUMP_FILE" {
    dw_start 20 FIBERIZE_WORKERS=1 FIBERIZE_DUMP_SIGNAL=QUIT
    kill -QUIT "$DW_PID"
    await_dump "$BATS_TEST_TMPDIR/err"
    dw_finish
    python3 "$BATS_TEST_DIRNAME/dump_check.py" "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err"
}

@test "no FIBERIZE_DUMP_SIGNAL: the signal does what it does natively" {
    dw_start 20 FIBERIZE_WORKERS=1
    kill -USR2 "$DW_PID"
    local status=0
    wait "$DW_TIMEOUT_PID" || status=$?
    # USR2's default action ends the process: timeout reports 128+12
    [[ $status == 140 ]] || { echo "status $status"; return 1; }
    ! grep -q 'fiberize dump' "$BATS_TEST_TMPDIR/err"
}

@test "dump of 100,000 parked fibers: finishes, counts exact, summary first" {
    local dump=$BATS_TEST_TMPDIR/dump
    dw_start 10 FIBERIZE_WORKERS=2 FIBERIZE_DUMP_SIGNAL=USR2 FIBERIZE_DUMP_FILE="$dump" \
        -- 100000
    local start=$SECONDS
    kill -USR2 "$DW_PID"
    await_dump "$dump"
    echo "dump took $((SECONDS - start)) s"
    dw_finish
    python3 "$BATS_TEST_DIRNAME/dump_check.py" "$BATS_TEST_TMPDIR/out" "$dump"
    # readable: the kinds come first, the biggest one at the top
    grep -A1 '^-- 11 kinds of fibers:$' "$dump" | tail -1 |
        grep -q '^  100,000 fibers: parked nanosleep in idle_main$' || {
        sed -n '1,20p' "$dump"
        return 1
    }
}
