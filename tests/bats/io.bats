#!/usr/bin/env bats
# Reactor and I/O: blocking fds park the fiber, with the real call's contract.
load helpers

@test "io contract: EAGAIN, poll/select timeouts, SO_RCVTIMEO, shutdown, EPIPE, big writes" {
    compare_native io_contract
}

@test "pipe and socketpair ping-pong" {
    compare_native pingpong 20000
}

@test "pipe and socketpair ping-pong on one carrier" {
    FIBERIZE_WORKERS=1 compare_native pingpong 5000
}

@test "thread-per-connection echo: 10,000 connections open at once, exact totals" {
    local hard
    hard=$(ulimit -Hn)
    [[ $hard == unlimited || $hard -ge 10100 ]] || skip "needs 10,100 fds per process, hard limit is $hard"
    compare_native echo_stress 10000
}

@test "64 MiB in small and large writes; a blocked reader's fd closed and reused" {
    compare_native io_transfer
}

@test "a call blocked on an fd another thread closes keeps the file, as natively" {
    compare_native io_close_waiting
}

@test "a call blocked on an fd another thread closes keeps the file, on one carrier" {
    FIBERIZE_WORKERS=1 compare_native io_close_waiting
}

# prog's "race 300" mode on 2 and 1 carriers: no round may go bad
race_rounds() {
    for w in 2 1; do
        FIBERIZE_WORKERS=$w run_fiberized "$1" "${2:-race}" 300
        [ "$status" -eq 0 ]
        [[ "$output" == *"race: 300 rounds, 0 bad"* ]]
    done
}

@test "closes racing four parking readers: 300 rounds, every held file released" {
    race_rounds io_close_waiting
}

@test "poll, select and epoll_wait blocked on an fd another thread closes keep the file, as natively" {
    compare_native poll_close_waiting
}

@test "poll, select and epoll_wait blocked on an fd another thread closes, on one carrier" {
    FIBERIZE_WORKERS=1 compare_native poll_close_waiting
}

# The close lands while pollers are still starting: one that parks after
# the close began but before the real close must still be woken.
@test "closes racing four starting pollers: 300 rounds, none left parked" {
    race_rounds poll_close_waiting
}

@test "an epoll fd's close racing four starting epoll_waits: 300 rounds, none left parked" {
    race_rounds poll_close_waiting race-epoll
}

@test "64 MiB transfers and fd reuse on one carrier" {
    FIBERIZE_WORKERS=1 compare_native io_transfer
}

# cat runs on the glibc under test ("$@"); python3 only looks at the pipe.
@test "fiberize cat in a pipeline leaves the shell's pipes blocking" {
    fz_prog_cmd "$(command -v cat)"
    run bash -c 'echo hi | { "$FZ" -- "$@" >/dev/null; python3 -c "import fcntl,os; print(fcntl.fcntl(0,fcntl.F_GETFL) & os.O_NONBLOCK)"; } | cat' _ "${fz_cmd[@]}"
    [ "$status" -eq 0 ]
    [ "$output" = "0" ]
    run bash -c 'echo hi | "$FZ" -- "$@" | { cat >/dev/null; python3 -c "import fcntl,os; print(fcntl.fcntl(0,fcntl.F_GETFL) & os.O_NONBLOCK)"; }' _ "${fz_cmd[@]}"
    [ "$output" = "0" ]
}

@test "fiberize cat copies a pipeline byte for byte" {
    fz_prog_cmd "$(command -v cat)"
    run bash -c 'head -c 3000000 /dev/urandom > "$BATS_TEST_TMPDIR/in"; "$FZ" -- "$@" < "$BATS_TEST_TMPDIR/in" | "$FZ" -- "$@" | cmp - "$BATS_TEST_TMPDIR/in"' _ "${fz_cmd[@]}"
    [ "$status" -eq 0 ]
}

@test "recvmmsg/sendmmsg, sendfile, own epoll fd, SA_RESTART semantics" {
    compare_native io_more
}

@test "recvmmsg/sendmmsg, sendfile, own epoll fd, SA_RESTART semantics on one carrier" {
    FIBERIZE_WORKERS=1 compare_native io_more
}

@test "an fd closed by fclose and reused by eventfd, timerfd or fopen behaves as the new file" {
    compare_native io_fdreuse
}

@test "an idle server blocked in accept uses no CPU" {
    fz_prog_cmd http_server
    "$FZ" -- "${fz_cmd[@]}" 0 >"$BATS_TEST_TMPDIR/out" 2>&1 &
    local pid=$!
    sleep 2
    local ticks
    ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    kill -TERM "$pid"
    wait "$pid" || true
    echo "CPU ticks (1/100 s) over 2 s idle: $ticks"
    [ "$ticks" -le 10 ]
}
