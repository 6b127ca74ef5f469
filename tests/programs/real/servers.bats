#!/usr/bin/env bats
# Threaded servers from Debian under fiberize: redis-server with I/O
# threads and memcached with worker threads (libevent, epoll).  Each is
# loaded with a benchmark tool and checked key by key; memcached runs
# natively and fiberized under the same deterministic load, and its exact
# counters must match.

load real_helpers

setup() {
    skip_uninstrumented_under_asan
}

@test "redis-server (io-threads 2): redis-benchmark, then every key SET and GET back" {
    command -v redis-server >/dev/null || skip "redis-server not installed"
    local port
    port=$(free_port)
    start_bg redis "$FZ" -- redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --io-threads 2 --io-threads-do-reads yes --daemonize no
    wait_port "$port"
    run timeout 120 redis-benchmark -p "$port" -q -n 20000 -c 50 -t set,get,incr,lpush,lpop
    echo "$output" | tr '\r' '\n' | grep "requests per second" || true
    local bench_status=$status
    run timeout 120 "$PY" "$BATS_TEST_DIRNAME/py/kvcheck.py" redis "$port" 16 5000
    local check_output=$output check_status=$status
    run redis-cli -p "$port" dbsize
    local dbsize=$output
    stop_bg redis
    echo "$check_output"
    echo "dbsize: $dbsize"
    [ "$bench_status" -eq 0 ]
    [ "$check_status" -eq 0 ]
}

# memcached_run native|fiberize OUTDIR [load]: start memcached with four
# worker threads, optionally put memaslap's bounded load on it (every get
# verified), then set and read back every key with kvcheck.py and record
# the server's exact counters.  Writes OUTDIR/load (memaslap's status and
# summary counters), OUTDIR/check (kvcheck's verdict), OUTDIR/stats.
memcached_run() {
    local label=$1 out=$2 load=${3:-} port status=0 prefix=()
    [[ $label == fiberize ]] && prefix=("$FZ" --)
    mkdir -p "$out"
    port=$(free_port)
    start_bg "mc-$label" "${prefix[@]}" memcached -p "$port" -l 127.0.0.1 -t 4 -U 0 \
        -u "$(id -un)" -m 64
    if ! wait_port "$port"; then
        stop_bg "mc-$label"
        echo "$label memcached did not start:"
        cat "$BATS_TEST_TMPDIR/mc-$label.log"
        return 1
    fi
    if [[ -n $load ]]; then
        timeout 60 "$MEMASLAP" -s "127.0.0.1:$port" -T 2 -c 64 -x 128000 --verify=1.0 \
            >"$out/load.log" 2>&1 || status=$?
        echo "memaslap status $status" >"$out/load"
        grep -E '^(cmd_get|cmd_set|get_misses|verify_misses|verify_failed):' "$out/load.log" >>"$out/load"
        echo "memaslap $label: $(grep -o 'TPS: [0-9]*' "$out/load.log")"
    fi
    status=0
    timeout 60 "$PY" "$BATS_TEST_DIRNAME/py/kvcheck.py" memcached "$port" 16 5000 \
        >"$out/check" 2>&1 || status=$?
    echo "kvcheck status $status" >>"$out/check"
    timeout 30 "$PY" "$BATS_TEST_DIRNAME/py/mcstats.py" "$port" >"$out/stats" 2>&1
    stop_bg "mc-$label"
}

# Both runs of memcached_run gave the same files, or show them.
memcached_same() {
    local f ok=0
    for f in "$@"; do
        cmp -s "$BATS_TEST_TMPDIR/native/$f" "$BATS_TEST_TMPDIR/fiberize/$f" && continue
        ok=1
        echo "--- $f differs (native, then fiberized):"
        cat "$BATS_TEST_TMPDIR/native/$f"
        cat "$BATS_TEST_TMPDIR/fiberize/$f"
    done
    return $ok
}

@test "memcached -t 4 under memaslap (64 conns, 128000 ops, gets verified), then every key read back" {
    command -v memcached >/dev/null || skip "memcached not installed"
    MEMASLAP=$(command -v memcaslap || command -v memaslap) ||
        skip "memaslap (libmemcached-tools) not installed"
    memcached_run native "$BATS_TEST_TMPDIR/native" load
    memcached_run fiberize "$BATS_TEST_TMPDIR/fiberize" load
    cat "$BATS_TEST_TMPDIR/fiberize/load" "$BATS_TEST_TMPDIR/fiberize/check"
    memcached_same load check stats
    local d
    for d in native fiberize; do
        grep -qx 'memaslap status 0' "$BATS_TEST_TMPDIR/$d/load"
        grep -qx 'verify_failed: 0' "$BATS_TEST_TMPDIR/$d/load"
        grep -qx 'verify_misses: 0' "$BATS_TEST_TMPDIR/$d/load"
        grep -qx 'get_misses: 0' "$BATS_TEST_TMPDIR/$d/load"
        [ "$(awk '/^cmd_(get|set):/ { n += $2 } END { print n }' "$BATS_TEST_TMPDIR/$d/load")" -eq 128000 ]
        grep -q 'errors 0$' "$BATS_TEST_TMPDIR/$d/check"
        grep -qx 'kvcheck status 0' "$BATS_TEST_TMPDIR/$d/check"
    done
}

@test "memcached -t 4: 16 client threads set and read back every key, same counters natively" {
    command -v memcached >/dev/null || skip "memcached not installed"
    memcached_run native "$BATS_TEST_TMPDIR/native"
    memcached_run fiberize "$BATS_TEST_TMPDIR/fiberize"
    cat "$BATS_TEST_TMPDIR/fiberize/check" "$BATS_TEST_TMPDIR/fiberize/stats"
    memcached_same check stats
    grep -q 'errors 0$' "$BATS_TEST_TMPDIR/fiberize/check"
    grep -qx 'kvcheck status 0' "$BATS_TEST_TMPDIR/fiberize/check"
    grep -qx 'cmd_get 5000' "$BATS_TEST_TMPDIR/fiberize/stats"
}
