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

# web_run native|fiberize DIR OUTDIR: serve DIR with python3 -m http.server,
# put wrk on one file for 3 s with 50 connections, then fetch every file
# of DIR with curl into OUTDIR.  wrk's report is OUTDIR/wrk.
web_run() {
    local label=$1 dir=$2 out=$3 port f prefix=()
    [[ $label == fiberize ]] && prefix=("$FZ" --)
    mkdir -p "$out"
    port=$(free_port)
    # ThreadingHTTPServer listens with a backlog of 5: under 50 connections
    # some SYNs wait for a retransmit, so a loaded box needs wrk's timeout
    # well above that second.
    (cd "$dir" && exec "${prefix[@]}" "$PY" -m http.server "$port" --bind 127.0.0.1) \
        >"$BATS_TEST_TMPDIR/web-$label.log" 2>&1 &
    echo $! >"$BATS_TEST_TMPDIR/web-$label.pid"
    if ! wait_port "$port"; then
        stop_bg "web-$label"
        cat "$BATS_TEST_TMPDIR/web-$label.log"
        return 1
    fi
    timeout 60 wrk -t2 -c50 -d3s --timeout 10s "http://127.0.0.1:$port/f.bin" >"$out/wrk" 2>&1 ||
        echo "wrk status $?" >>"$out/wrk"
    for f in f.bin big.bin empty sub/small.txt; do
        mkdir -p "$(dirname "$out/files/$f")"
        timeout 30 curl -sS --fail -o "$out/files/$f" "http://127.0.0.1:$port/$f" ||
            echo "curl $f status $?" >>"$out/curl"
    done
    stop_bg "web-$label"
}

# A wrk report: some requests, no socket errors, no non-2xx/3xx answers.
wrk_clean() {
    local report=$1 requests
    requests=$(awk '/ requests in / { print $1 }' "$report")
    echo "$(basename "$(dirname "$report")"): $requests requests," \
        "$(awk '/^Requests\/sec:/ { print $2 }' "$report") req/s"
    if [[ ! ${requests:-0} -gt 0 ]] || grep -qE 'Socket errors|Non-2xx|wrk status' "$report"; then
        cat "$report"
        return 1
    fi
}

@test "python3 -m http.server under wrk -c50: clean natively and fiberized, same bytes via curl" {
    command -v wrk >/dev/null || skip "wrk not installed"
    local dir=$BATS_TEST_TMPDIR/www d
    mkdir -p "$dir/sub"
    head -c 20000 /dev/urandom >"$dir/f.bin"
    head -c 1500000 /dev/urandom >"$dir/big.bin"
    : >"$dir/empty"
    echo "hello" >"$dir/sub/small.txt"
    web_run native "$dir" "$BATS_TEST_TMPDIR/native"
    web_run fiberize "$dir" "$BATS_TEST_TMPDIR/fiberize"
    wrk_clean "$BATS_TEST_TMPDIR/native/wrk"
    wrk_clean "$BATS_TEST_TMPDIR/fiberize/wrk"
    for d in native fiberize; do
        [ ! -e "$BATS_TEST_TMPDIR/$d/curl" ] || { cat "$BATS_TEST_TMPDIR/$d/curl"; false; }
        diff -r "$dir" "$BATS_TEST_TMPDIR/$d/files"
    done
}

@test "CPython thread workload: pool over sockets, queue, subprocess, events" {
    in_both "$PY" "$BATS_TEST_DIRNAME/py/workload.py"
    same_in_both
    grep -q "mismatches: 0" "$fiber_out"
}
