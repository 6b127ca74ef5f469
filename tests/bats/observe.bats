#!/usr/bin/env bats
# Seeing inside a fiberized program: fiber dumps on a signal, the control
# socket behind `fiberize dump PID` / `fiberize stats PID`, the exit stats
# table and the gdb extension.  Dumps are compared with what the dumped
# program knows it did (tests/programs/dump_waits.c, checked by
# dump_check.py).

load helpers

# Whatever a test started in the background ends with it.
teardown() {
    local p
    for p in ${SRV_PID:-} ${WRK_PID:-}; do
        kill -TERM "$p" 2>/dev/null || true
    done
    [[ -n ${XDG_DIR:-} ]] && rm -rf "$XDG_DIR"
    return 0
}

# wait_for_line REGEX FILE TENTHS: until FILE has a line matching REGEX, at
# most TENTHS tenths of a second (the caller then checks what it read).
wait_for_line() {
    local i
    for ((i = 0; i < $3; i++)); do
        grep -q "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 0
}

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
    wait_for_line '^READY' "$BATS_TEST_TMPDIR/out" 600
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

@test "FIBERIZE_DUMP_FILE that cannot be opened: said why, the dump goes to stderr" {
    dw_start 20 FIBERIZE_WORKERS=1 FIBERIZE_DUMP_SIGNAL=QUIT FIBERIZE_DUMP_FILE=/nonexistent-dir/dump
    kill -QUIT "$DW_PID"
    await_dump "$BATS_TEST_TMPDIR/err"
    dw_finish
    grep -q 'fiberize: cannot open FIBERIZE_DUMP_FILE "/nonexistent-dir/dump" (No such file or directory); this dump goes to stderr instead' \
        "$BATS_TEST_TMPDIR/err" || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
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

# ---- the control socket ----------------------------------------------------

# Start http_server fiberized with --control; sets SRV_PID and SRV_PORT.
srv_start() {
    "$FZ" --control --workers 2 -- "$PROG/http_server" 0 >"$BATS_TEST_TMPDIR/srv.out" \
        2>"$BATS_TEST_TMPDIR/srv.err" &
    SRV_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        SRV_PORT=$(sed -n 's/^listening on //p' "$BATS_TEST_TMPDIR/srv.out" 2>/dev/null)
        [[ -n $SRV_PORT ]] && return 0
        sleep 0.1
    done
    echo "http_server did not start"
    return 1
}

srv_stop() {
    kill -TERM "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
}

@test "fiberize dump/stats PID: a server under load keeps serving through 20 dumps" {
    command -v wrk >/dev/null || skip "wrk is not installed"
    srv_start
    # wrk runs until interrupted (then it prints its summary)
    timeout 90 wrk -t2 -c50 -d60s "http://127.0.0.1:$SRV_PORT/" >"$BATS_TEST_TMPDIR/wrk" 2>&1 &
    WRK_PID=$!
    local i stats_pid
    sleep 1
    timeout 30 "$FZ" stats "$SRV_PID" --watch 2 --count 2 --json >"$BATS_TEST_TMPDIR/stats" &
    stats_pid=$!
    for ((i = 0; i < 20; i++)); do
        timeout 30 "$FZ" dump "$SRV_PID" >"$BATS_TEST_TMPDIR/dump.$i" || {
            echo "dump $i failed"
            return 1
        }
        python3 "$BATS_TEST_DIRNAME/dump_check.py" - "$BATS_TEST_TMPDIR/dump.$i" >/dev/null || {
            python3 "$BATS_TEST_DIRNAME/dump_check.py" - "$BATS_TEST_TMPDIR/dump.$i"
            return 1
        }
    done
    wait "$stats_pid"
    kill -0 "$WRK_PID" || { echo "the load ended before the dumps did"; return 1; }
    kill -INT "$WRK_PID"
    wait "$WRK_PID" || true
    srv_stop
    cat "$BATS_TEST_TMPDIR/wrk"
    grep -q '^Requests/sec:' "$BATS_TEST_TMPDIR/wrk"
    ! grep -q 'Socket errors\|Non-2xx' "$BATS_TEST_TMPDIR/wrk"
    local rps
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$BATS_TEST_TMPDIR/wrk")
    # rates plausible: every request is read by a fiber that parks on its
    # socket at most a few times, and switches at least once
    python3 - "$BATS_TEST_TMPDIR/stats" "$rps" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
rps = float(sys.argv[2])
assert len(lines) == 2, lines
first, last = json.loads(lines[0]), json.loads(lines[1])
rate = last['per_second']
print('requests/s %.0f; per second: parks on fds %.0f, switches %.0f; fds %d, fibers %d'
      % (rps, rate['parks_fd'], rate['switches'], last['fds_registered'], last['fibers_live']))
assert 1.5 < last['interval_s'] < 10
assert 0.1 * rps <= rate['parks_fd'] <= 10 * rps, 'parks_fd rate'
assert rate['switches'] >= 0.1 * rps, 'switches rate'
assert last['fibers_live'] >= 2 and last['fds_registered'] >= 2
assert last['fibers_created'] >= first['fibers_created']
assert len(last['carriers']) >= 2
PY
}

@test "fiberize stats PID: table with rates in --watch mode" {
    srv_start
    run timeout 30 "$FZ" stats "$SRV_PID" --watch 0.5 --count 2
    srv_stop
    echo "$output"
    [[ $status == 0 ]]
    [[ $(grep -c '^fiberize stats, pid '"$SRV_PID" <<<"$output") == 2 ]]
    grep -q '^ *total *per second$' <<<"$output"
    grep -q '^  context switches  *[0-9,]*  *[0-9.]*$' <<<"$output"
    grep -q '^  0  *[0-9]*  *[0-9.]*% ' <<<"$output"
}

@test "control socket: private, refuses another user, removed at exit" {
    command -v setpriv >/dev/null || skip "setpriv is not installed"
    [[ $(id -u) == 0 ]] || skip "needs root to run a client as nobody"
    # not under BATS_TEST_TMPDIR, whose parents nobody may not enter
    XDG_DIR=$(mktemp -d /tmp/fiberize-xdg.XXXXXX)
    local dir=$XDG_DIR
    export XDG_RUNTIME_DIR=$dir
    srv_start
    local sock=$dir/fiberize-$SRV_PID.sock
    [[ -S $sock && $(stat -c %a "$sock") == 600 ]] || { ls -la "$dir"; srv_stop; return 1; }
    local nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
    # the directory and the socket's mode keep nobody out ...
    run "${nobody[@]}" "$FZ" stats "$SRV_PID"
    echo "$output"
    [[ $status == 1 && $output == *"not yours"* ]] || { srv_stop; return 1; }
    # ... and so do the peer credentials when the modes would let it in
    chmod 0755 "$dir"
    chmod 0666 "$sock"
    run "${nobody[@]}" "$FZ" dump "$SRV_PID"
    echo "$output"
    [[ $status == 1 && $output == *"refused: uid 65534"* && $output != *"fiberize dump"* ]] ||
        { srv_stop; return 1; }
    # the owner still gets its answer
    run "$FZ" stats "$SRV_PID" --json
    [[ $status == 0 && $output == '{"pid":'"$SRV_PID"* ]] || { srv_stop; return 1; }
    srv_stop
    [[ ! -e $sock ]] || { echo "socket left behind"; return 1; }
}

@test "fiberize dump PID without --control: a clear error" {
    "$FZ" --workers 1 -- "$PROG/http_server" 0 >"$BATS_TEST_TMPDIR/srv.out" 2>&1 &
    SRV_PID=$!
    sleep 0.5
    run "$FZ" dump "$SRV_PID"
    srv_stop
    echo "$output"
    [[ $status == 1 && $output == *"has no control socket"* ]]
}

# gdb with scripts/fiberize-gdb.py on tests/programs/gdb_fibers: main reads
# stdin (held open here, on fd 8), two threads wait in wait_for_go, one
# naps in nap_for_an_hour.  The io hooks are off, so main's fgets blocks
# its carrier (stdio parks otherwise) and the tests see a running fiber
# beside the parked ones.  Sets GF_PID, GF_FIFO.
gf_start() {
    command -v gdb >/dev/null || skip "gdb not installed"
    GF_FIFO=$BATS_TEST_TMPDIR/in
    mkfifo "$GF_FIFO"
    exec 8<>"$GF_FIFO"
    FIBERIZE_HOOKS=-io timeout --kill-after=5 120 "$FZ" --workers 1 -- "$PROG/gdb_fibers" <"$GF_FIFO" \
        >"$BATS_TEST_TMPDIR/out" 2>&1 &
    GF_TIMEOUT_PID=$!
    wait_for_line '^ready' "$BATS_TEST_TMPDIR/out" 100
    GF_PID=$(awk '/^ready/ { print $2 }' "$BATS_TEST_TMPDIR/out")
    [[ -n $GF_PID ]] || { cat "$BATS_TEST_TMPDIR/out"; return 1; }
    sleep 0.3 # every thread parked
}

# Release the program; it must then finish as it would have without gdb.
gf_finish() {
    echo go >&8
    wait "$GF_TIMEOUT_PID"
    local status=$?
    exec 8>&-
    cat "$BATS_TEST_TMPDIR/out"
    [[ $status == 0 ]] && grep -q '^done$' "$BATS_TEST_TMPDIR/out"
}

gf_gdb() {
    timeout 120 gdb -nx -batch "$@" 2>&1 | grep -v '^\[New LWP\|^\[Thread debugging\|libthread_db\|^warning'
}

@test "gdb: info fibers and fiber N on a live process; the program runs on after detach" {
    gf_start
    local ext=$BATS_TEST_DIRNAME/../../scripts/fiberize-gdb.py
    run gf_gdb -p "$GF_PID" -ex "source $ext" -ex 'info fibers' -ex 'fiber 1' -ex 'fiber 2' \
        -ex 'bt' -ex 'fiber 4' -ex 'bt' -ex 'fiber 99'
    echo "$output"
    [[ $output == *"4 fibers"* ]] || { gf_finish; return 1; }
    [[ $(grep -c 'parked .*wait_for_go <- waiter' <<<"$output") == 2 ]] || { gf_finish; return 1; }
    [[ $(grep -c 'parked .*nap_for_an_hour <- napper' <<<"$output") == 1 ]] || { gf_finish; return 1; }
    # main is in a read of stdin with the io hooks off: running
    grep -q "tid $GF_PID .*running *main on carrier 0" <<<"$output" || { gf_finish; return 1; }
    [[ $output == *"fiber 1 is running: thread 1 is its carrier"* ]] || { gf_finish; return 1; }
    # fiber N's backtrace is the fiber's own stack, down to its start routine
    [[ $output == *"in wait_for_go ()"*"in waiter ("* ]] || { gf_finish; return 1; }
    [[ $output == *"in nap_for_an_hour ()"*"in napper ("* ]] || { gf_finish; return 1; }
    [[ $output == *"no live fiber 99"* ]] || { gf_finish; return 1; }
    # gdb detached while showing fiber 4: its hooks put the carrier's
    # registers back, so the program goes on undisturbed
    gf_finish
}

@test "gdb: a core from gcore lists the same fibers, and fiber N + bt shows the fiber's own frames" {
    gf_start
    local ext=$BATS_TEST_DIRNAME/../../scripts/fiberize-gdb.py core=$BATS_TEST_TMPDIR/core
    run gf_gdb -p "$GF_PID" -ex "source $ext" -ex 'info fibers' -ex "gcore $core"
    echo "$output"
    local live
    live=$(grep -E '^ +[0-9]+ +tid' <<<"$output")
    # the extension's gcore wrote the guarded fiber stacks into the core
    [[ $output == *"guarded mappings (fiber stacks) written into $core"* ]] || { gf_finish; return 1; }
    run gf_gdb "$PROG/gdb_fibers" "$core" -ex "source $ext" -ex 'info fibers' -ex 'fiber 4' -ex 'bt' \
        -ex 'fiber 2' -ex 'bt' -ex 'fiber restore' -ex 'bt'
    echo "$output"
    local dead
    dead=$(grep -E '^ +[0-9]+ +tid' <<<"$output")
    # the same lines, where each parked fiber waits included (read from its
    # stack in the core)
    [[ $(wc -l <<<"$live") == 4 && $live == "$dead" ]] || { gf_finish; return 1; }
    # fiber N's frames come from its own stack: only the napper's stack
    # holds nap_for_an_hour, only a waiter's holds wait_for_go
    [[ $output == *"fiber 4 (parked), core file"*"in nap_for_an_hour ()"*"in napper ("* ]] || { gf_finish; return 1; }
    [[ $output == *"fiber 2 (parked), core file"*"in wait_for_go ()"*"in waiter ("* ]] || { gf_finish; return 1; }
    # after fiber restore, bt is the carrier's own again: main reading stdin
    local last
    last=$(awk '/^#0 / { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' <<<"$output")
    [[ $last == *"in main ()"* && $last != *"waiter"* ]] || { gf_finish; return 1; }
    gf_finish
}
