#!/usr/bin/env bats
# Threaded servers from Debian under fiberize: redis-server with I/O
# threads and memcached with worker threads (libevent, epoll).  Each is
# loaded with its own benchmark tool and checked key by key.

load real_helpers

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

@test "memcached -t 4: every key set and read back by 16 client threads" {
    command -v memcached >/dev/null || skip "memcached not installed"
    local port
    port=$(free_port)
    start_bg mc "$FZ" -- memcached -p "$port" -l 127.0.0.1 -t 4 -U 0 -u "$(id -un)" -m 64
    wait_port "$port"
    run timeout 120 "$PY" "$BATS_TEST_DIRNAME/py/kvcheck.py" memcached "$port" 16 5000
    stop_bg mc
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "memcached: the same data check natively gives the same result" {
    command -v memcached >/dev/null || skip "memcached not installed"
    local port
    port=$(free_port)
    start_bg mc memcached -p "$port" -l 127.0.0.1 -t 4 -U 0 -u "$(id -un)" -m 64
    wait_port "$port"
    run timeout 120 "$PY" "$BATS_TEST_DIRNAME/py/kvcheck.py" memcached "$port" 16 5000
    stop_bg mc
    echo "$output"
    [ "$status" -eq 0 ]
}
