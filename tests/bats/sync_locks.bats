#!/usr/bin/env bats
# Locks and condition variables park fibers on the parking lot: pthread
# mutexes of every simple kind, condition variables on both clocks, C11
# mtx/cnd, raw futex calls through syscall(), C++ std::mutex & co, and
# fibers sharing a mutex with threads that are not fibers.  Each program
# prints only results that must match natively and under fiberize.

load helpers

# No fiber may hold its carrier while it waits: with one carrier and the
# hand-off monitor made too slow to help (10 s), a wait that blocked the
# carrier would stall everything behind it; FIBERIZE_STATS must then report
# no hand-off at all.
parks_without_handoff() {
    local name=$1
    shift
    export FIBERIZE_WORKERS=1 FIBERIZE_HANDOFF_US=10000000 FIBERIZE_STATS=1
    FZ_TIMEOUT=60 run_fiberized --separate-stderr "$name" "$@"
    unset FIBERIZE_WORKERS FIBERIZE_HANDOFF_US FIBERIZE_STATS
    if [[ $status -ne 0 || $output == *FAIL* || $stderr != *" handoffs=0 "* ]]; then
        echo "status $status"
        echo "stdout: $output"
        echo "stderr: $stderr"
        return 1
    fi
}

@test "sync_mutex: 64 threads x 100000 lock/unlock, kinds, error codes, timed locks" {
    compare_native sync_mutex
    ! grep -q FAIL "$BATS_TEST_TMPDIR/compare_native.sync_mutex/native.out"
}

@test "sync_mutex with FIBERIZE_WORKERS=1" {
    export FIBERIZE_WORKERS=1
    compare_native sync_mutex 64 20000
}

@test "sync_mutex with threads that are not fibers (FIBERIZE_HOOKS=-thread)" {
    export FIBERIZE_HOOKS=-thread
    compare_native sync_mutex 16 20000
}

@test "sync_mutex: contended waits park on one carrier" {
    parks_without_handoff sync_mutex 32 2000
}

@test "sync_robust: a robust mutex whose owner exits is EOWNERDEAD, also across processes" {
    compare_native sync_robust
    ! grep -q FAIL "$BATS_TEST_TMPDIR/compare_native.sync_robust/native.out"
}

@test "sync_robust with FIBERIZE_WORKERS=1" {
    FIBERIZE_WORKERS=1 compare_native sync_robust
}

@test "sync_cond: bounded buffer checksums, signal/broadcast, timed waits, C11" {
    compare_native sync_cond
    ! grep -q FAIL "$BATS_TEST_TMPDIR/compare_native.sync_cond/native.out"
}

@test "sync_cond with FIBERIZE_WORKERS=1" {
    export FIBERIZE_WORKERS=1
    compare_native sync_cond 4 4 20000 100
}

@test "sync_cond with threads that are not fibers (FIBERIZE_HOOKS=-thread)" {
    export FIBERIZE_HOOKS=-thread
    compare_native sync_cond 2 2 10000 50
}

@test "sync_cond: 200 waiters park on one carrier" {
    parks_without_handoff sync_cond 4 4 20000 200
}

@test "sync_futex: syscall(SYS_futex) waits, wakes, bitsets, requeues, time-outs" {
    compare_native sync_futex
    ! grep -q FAIL "$BATS_TEST_TMPDIR/compare_native.sync_futex/native.out"
}

@test "sync_futex: a futex lock parks on one carrier" {
    parks_without_handoff sync_futex 16 5000
}

@test "sync_cxx: std::mutex, condition_variable, timed_mutex, shared_mutex" {
    compare_native sync_cxx
    ! grep -q FAIL "$BATS_TEST_TMPDIR/compare_native.sync_cxx/native.out"
}

@test "sync_cxx with FIBERIZE_WORKERS=1" {
    export FIBERIZE_WORKERS=1
    compare_native sync_cxx
}

@test "sync_mixed: fibers and glibc's own timer threads share a mutex and a condvar" {
    compare_native sync_mixed
    compare_native sync_mixed 300000
}

@test "sync_mixed on a priority-inheritance mutex: no thread waits forever on a fiber" {
    compare_native sync_mixed 20000 pi
}

@test "sync_mixed with FIBERIZE_WORKERS=1" {
    export FIBERIZE_WORKERS=1
    compare_native sync_mixed 300000
}

# "plain": glibc's own priority-inheritance mutexes hang when fibers contend
# on them (the kernel sees the fibers' fake owner tids); with the sync family
# on, fibers never make the kernel wait on them.
@test "locks pass through with FIBERIZE_HOOKS=-sync" {
    export FIBERIZE_HOOKS=-sync
    compare_native sync_mutex 16 20000 plain
    compare_native sync_futex
}
