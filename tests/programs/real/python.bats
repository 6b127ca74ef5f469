#!/usr/bin/env bats
# CPython with threads: http.server (a thread per connection) and a
# workload of pools, queues, subprocesses and events.  Same bytes and same
# results natively and under fiberize.

load real_helpers

@test "python3 -m http.server: files fetched with curl are identical" {
    local port dir=$BATS_TEST_TMPDIR/www
    mkdir -p "$dir/sub"
    head -c 1000000 /dev/urandom >"$dir/big.bin"
    echo "hello" >"$dir/sub/small.txt"
    port=$(free_port)
    cd "$dir"
    start_bg web "$FZ" -- "$PY" -m http.server "$port" --bind 127.0.0.1
    wait_port "$port"
    curl -sS --fail -o "$BATS_TEST_TMPDIR/big.got" "http://127.0.0.1:$port/big.bin"
    curl -sS --fail -o "$BATS_TEST_TMPDIR/small.got" "http://127.0.0.1:$port/sub/small.txt"
    local listing
    listing=$(curl -sS --fail "http://127.0.0.1:$port/")
    stop_bg web
    cmp "$BATS_TEST_TMPDIR/big.got" "$dir/big.bin"
    cmp "$BATS_TEST_TMPDIR/small.got" "$dir/sub/small.txt"
    [[ $listing == *big.bin* ]]
}

@test "python3 -m http.server under concurrent load (ab -c 50): no failed requests" {
    command -v ab >/dev/null || skip "ab (apache2-utils) not installed"
    local port dir=$BATS_TEST_TMPDIR/www
    mkdir -p "$dir"
    head -c 20000 /dev/urandom >"$dir/f.bin"
    port=$(free_port)
    cd "$dir"
    start_bg web "$FZ" -- "$PY" -m http.server "$port" --bind 127.0.0.1
    wait_port "$port"
    run timeout 120 ab -q -n 2000 -c 50 "http://127.0.0.1:$port/f.bin"
    stop_bg web
    echo "$output" | grep -E "Complete requests|Failed requests|Requests per second"
    [ "$status" -eq 0 ]
    [[ $output == *"Complete requests:      2000"* ]]
    [[ $output == *"Failed requests:        0"* ]]
}

@test "CPython thread workload: pool over sockets, queue, subprocess, events" {
    in_both "$PY" "$BATS_TEST_DIRNAME/py/workload.py"
    same_in_both
    grep -q "mismatches: 0" "$fiber_out"
}
