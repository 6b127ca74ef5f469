# Helpers for the real-program suites: run unmodified Debian programs
# natively and under fiberize and compare what a user would compare.
#
#   free_port                  print a free TCP port on 127.0.0.1
#   wait_port PORT [SECS]      wait until something listens on PORT
#   start_bg NAME CMD...       start CMD in the background, pid in $BATS_TEST_TMPDIR/NAME.pid
#   stop_bg NAME               stop it by pid (TERM, then KILL), never by name
#   in_both CMD...             run CMD natively then under fiberize; both
#                              outputs in $native_out/$fiber_out, statuses in
#                              $native_status/$fiber_status

# Run by hand, this directory is one level deeper than the one the shared
# helpers guess the build directory from.
: "${FIBERIZE_BUILD:=$BATS_TEST_DIRNAME/../../../build}"
load ../../bats/helpers

PY=/usr/bin/python3

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
    local port=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port)))" && return 0
        sleep 0.05
    done
    echo "nothing listens on port $port after ${secs}s"
    return 1
}

start_bg() {
    local name=$1
    shift
    "$@" >"$BATS_TEST_TMPDIR/$name.log" 2>&1 &
    echo $! >"$BATS_TEST_TMPDIR/$name.pid"
}

stop_bg() {
    local name=$1 pid i
    pid=$(cat "$BATS_TEST_TMPDIR/$name.pid" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

in_both() {
    native_out=$BATS_TEST_TMPDIR/native.out
    fiber_out=$BATS_TEST_TMPDIR/fiber.out
    native_status=0
    fiber_status=0
    _fz_timeout "$@" >"$native_out" 2>"$BATS_TEST_TMPDIR/native.err" || native_status=$?
    _fz_timeout "$FZ" -- "$@" >"$fiber_out" 2>"$BATS_TEST_TMPDIR/fiber.err" || fiber_status=$?
}

# After in_both: same status and same stdout, or show the difference.
same_in_both() {
    if [[ $native_status == "$fiber_status" ]] && cmp -s "$native_out" "$fiber_out"; then
        return 0
    fi
    echo "status: native $native_status, fiberized $fiber_status"
    diff "$native_out" "$fiber_out" | head -40
    echo "--- fiberized stderr:"
    head -40 "$BATS_TEST_TMPDIR/fiber.err"
    return 1
}

# Under make check-asan libfiberize.so needs the ASan runtime, which must be
# the first library a process loads; Debian's uninstrumented programs load
# libc first, and several (redis-server, make, curl) crash at start.  The
# suites of such programs call this from setup.
skip_uninstrumented_under_asan() {
    [[ -z ${FZ_ASAN:-} ]] || skip "uninstrumented program with an ASan-built preload"
}
