#!/usr/bin/env bats
# Wake-ups on the I/O wait path: nothing that happens between a call's
# non-blocking attempt and its park is lost -- a byte a signal handler
# writes to a self-pipe, a signal, an error the kernel reports once.
load helpers

@test "self-pipe: a handler, a thread or a process writes while main waits in select/pselect/poll/ppoll/epoll_wait/read (1 carrier)" {
    FIBERIZE_WORKERS=1 compare_native wake_selfpipe 1000
}

@test "self-pipe on two carriers" {
    FIBERIZE_WORKERS=2 compare_native wake_selfpipe 1000
}

# The reduced program from CPython's asyncio: select() retried after EINTR
# must see the byte signal.set_wakeup_fd wrote.
@test "python3: select() sees the byte a signal's wakeup fd got" {
    command -v python3 >/dev/null || skip "python3 is not installed"
    local script=$BATS_TEST_TMPDIR/wakeup.py
    cat >"$script" <<'PY'
import signal, select, socket, time
a, b = socket.socketpair(); a.setblocking(False); b.setblocking(False)
signal.set_wakeup_fd(b.fileno())
signal.signal(signal.SIGALRM, lambda s, f: None)
for i in range(20):
    signal.setitimer(signal.ITIMER_REAL, 0.01, 0)
    t = time.time(); r = select.select([a], [], [], 5)
    took = time.time() - t
    if r[0] == [] or took > 1:
        print("round", i, "missed the byte:", r, took); break
    a.recv(16)
else:
    print("ok")
PY
    for workers in 1 2; do
        run _fz_timeout "$FZ" --workers $workers -- python3 "$script"
        echo "workers $workers: $output"
        [ "$status" -eq 0 ]
        [ "$output" = ok ]
    done
}

@test "a signal, cancel or shutdown between a call's attempt and its park ends it: 10,000 rounds per call and source (1 carrier)" {
    FIBERIZE_WORKERS=1 compare_native wake_window 10000
}

@test "signals between attempt and park on two carriers" {
    FIBERIZE_WORKERS=2 compare_native wake_window 10000
}

@test "ECONNRESET a hidden retry took reaches the program's next send/recv, once" {
    compare_native wake_reset
}

@test "ECONNRESET after a partial transfer on one carrier" {
    FIBERIZE_WORKERS=1 compare_native wake_reset
}

# A carrier going idle while the busy one polled fds for a moment slept
# with nobody in the driver; the busy one's fiber then blocked inside
# glibc, and a sleeping fiber's timer never fired (a hang in 2 of 3 runs
# before runtime/sched.c's poll_fds_now woke it).
@test "a timer fires while the other carrier blocks where fiberize cannot see: 1,500 rounds" {
    FIBERIZE_WORKERS=2 run_fiberized wake_timer_idle 1500 2
    [ "$status" -eq 0 ]
    [[ "$output" == *"1500 rounds, 0 bad"* ]]
}
