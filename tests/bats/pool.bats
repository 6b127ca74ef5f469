#!/usr/bin/env bats
# The blocking pool and child waits: name lookups, system/popen, waits,
# file locks, syncs and FIFO opens.  Each program runs natively and
# fiberized on one and on two carriers and must print the same thing and
# exit the same way; with the pool hook family off (FIBERIZE_HOOKS=-pool)
# the real calls are made in place and the results must still match.  The
# pool_park cases are fiberized only: one thread blocked for a second while
# 100 threads nap must not make the naps late nor need a carrier hand-off.

load helpers

# Every program here finishes in seconds; a hang should not cost minutes.
export FZ_TIMEOUT=${FZ_TIMEOUT:-60}

# Under check-asan the native ASan runtime reports a stack-buffer-underflow
# when a cancelled thread exits (it does not unpoison the unwound stack):
# pool_locks leaves its cancellation checks out in both runs.
[[ -z ${FZ_ASAN:-} ]] || export FZ_NO_CANCEL_TESTS=1

# pool_reap forks 500 children from a busy multi-threaded process: under
# ASan a child can deadlock in ASan's allocator, whose lock another thread
# held at the fork (glibc's malloc guards fork, ASan's does not; seen in
# gdb: the child's runtime start-up waits in SizeClassAllocator64).
skip_reap_under_asan() {
    [[ -z ${FZ_ASAN:-} ]] || skip "ASan's allocator is not fork-safe in a threaded process"
}

# pool_fifo's EINTR part hangs under ASan with the pool family off (a real
# blocking open on a carrier); not yet understood, passes in the plain build.
skip_under_asan() {
    [[ -z ${FZ_ASAN:-} ]] || skip "hangs under ASan with the pool family off (not yet understood)"
}

# ---- compared with the native run ------------------------------------------

@test "pool_dns: getaddrinfo from 200 threads, getnameinfo, gethostby*_r, h_errno (1 carrier)" {
    FIBERIZE_WORKERS=1 compare_native pool_dns
}

@test "pool_dns on 2 carriers" {
    FIBERIZE_WORKERS=2 compare_native pool_dns
}

@test "pool_system: system from 50 threads, exit codes, system(NULL), popen/pclose (1 carrier)" {
    FIBERIZE_WORKERS=1 compare_native pool_system
}

@test "pool_system on 2 carriers" {
    FIBERIZE_WORKERS=2 compare_native pool_system
}

@test "pool_reap: 500 children reaped by waitpid(pid) and wait() at once (1 carrier)" {
    skip_reap_under_asan
    FIBERIZE_WORKERS=1 compare_native pool_reap
}

@test "pool_reap on 2 carriers" {
    skip_reap_under_asan
    FIBERIZE_WORKERS=2 compare_native pool_reap
}

@test "pool_wait: WNOHANG, ECHILD, waitid forms, stop/continue, SIGCHLD ignored, EINTR (1 carrier)" {
    FIBERIZE_WORKERS=1 compare_native pool_wait
}

@test "pool_wait on 2 carriers" {
    FIBERIZE_WORKERS=2 compare_native pool_wait
}

@test "pool_locks: flock, F_SETLKW, EDEADLK, OFD locks, lockf, alarm timeouts, syncs (1 carrier)" {
    FIBERIZE_WORKERS=1 compare_native pool_locks
}

@test "pool_locks on 2 carriers" {
    FIBERIZE_WORKERS=2 compare_native pool_locks
}

@test "pool_fifo: both ends of FIFOs opened by threads, O_NONBLOCK forms, EINTR (1 carrier)" {
    FIBERIZE_WORKERS=1 compare_native pool_fifo
}

@test "pool_fifo on 2 carriers" {
    FIBERIZE_WORKERS=2 compare_native pool_fifo
}

# ---- the pool hook family off: real calls in place -------------------------

@test "FIBERIZE_HOOKS=-pool: pool_dns still matches" {
    FIBERIZE_HOOKS=-pool compare_native pool_dns
}

@test "FIBERIZE_HOOKS=-pool: pool_system still matches" {
    # Open defect (README): on musl, with the pool off, 1-2 of 20 concurrent
    # popen calls fail in about 1 run of 8 fiberized, never natively (0 of
    # 15): likely musl's fclose closing before unlisting, a race fiberize
    # widens (README, Known limitations).  The default (pool on) passes.
    [[ ${FZ_LIBC:-} != musl ]] || skip "open defect on musl: popen from fibers with the pool off (README)"
    FIBERIZE_HOOKS=-pool compare_native pool_system
}

@test "FIBERIZE_HOOKS=-pool: pool_reap still matches" {
    skip_reap_under_asan
    FIBERIZE_HOOKS=-pool compare_native pool_reap
}

@test "FIBERIZE_HOOKS=-pool: pool_wait still matches" {
    FIBERIZE_HOOKS=-pool compare_native pool_wait
}

# With the family off a blocked call sits in the kernel on a carrier the
# program does not know about: a process-directed signal reaches it only
# if the kernel picks that thread (on one carrier it is the main thread, as
# natively), and pthread_cancel does not reach it at all (README, limits),
# so pool_locks, which cancels a thread blocked in F_SETLKW, is not run.
@test "FIBERIZE_HOOKS=-pool: pool_fifo still matches (1 carrier)" {
    skip_under_asan
    FIBERIZE_WORKERS=1 FIBERIZE_HOOKS=-pool compare_native pool_fifo
}

# ---- parking proofs (fiberized only) ---------------------------------------

# park_case KIND POOL: pool_park KIND on one carrier with FIBERIZE_STATS=1.
# The call must have blocked about a second (>= 900 ms), no nap may be
# 200 ms late, and the last stats line (the program's own: it exits after
# its children) must show no hand-off and no spare carrier.  POOL says what
# pool_calls must be: "0" (the wait parks on a pidfd), "some", or "any"
# (the FIFO cases: the open goes to the pool only when the other end is not
# open yet, which the helper process may or may not have done by then; the
# read or write that blocks parks on the fd).
park_case() {
    local kind=$1 pool=$2
    # A 100 ms hand-off period: a call that held the carrier for its whole
    # second would still be handed off, a start-up hiccup of a few ms not.
    export FIBERIZE_WORKERS=1 FIBERIZE_STATS=1 FIBERIZE_HANDOFF_US=100000
    run_fiberized --separate-stderr pool_park "$kind"
    local stats blocked late handoffs spares calls
    stats=$(grep 'fiberize stats:' <<<"$stderr" | tail -n 1)
    blocked=$(sed -n "s/^$kind: ok, blocked \([0-9]*\) ms$/\1/p" <<<"$output")
    late=$(sed -n 's/^naps: [0-9]*, worst lateness \([0-9]*\) ms$/\1/p' <<<"$output")
    handoffs=$(grep -o ' handoffs=[0-9]*' <<<"$stats" | cut -d= -f2)
    spares=$(grep -o ' spares_started=[0-9]*' <<<"$stats" | cut -d= -f2)
    calls=$(grep -o ' pool_calls=[0-9]*' <<<"$stats" | cut -d= -f2)
    echo "status $status; stdout:"
    echo "$output"
    echo "stats: $stats"
    [[ $status -eq 0 ]]
    [[ -n $blocked && $blocked -ge 900 ]]
    [[ -n $late && $late -lt 200 ]]
    [[ $handoffs == 0 && $spares == 0 ]]
    if [[ $pool == 0 ]]; then
        [[ $calls == 0 ]]
    elif [[ $pool == any ]]; then
        [[ -n $calls ]]
    else
        [[ -n $calls && $calls -ge 1 ]]
    fi
}

@test "parked in flock for 1 s on one carrier: naps on time, no hand-off" {
    park_case flock some
}

@test "parked in fcntl(F_SETLKW) for 1 s on one carrier: naps on time, no hand-off" {
    park_case setlkw some
}

@test "parked in waitpid(pid) for 1 s on one carrier: on a pidfd, not the pool" {
    park_case waitpid 0
}

@test "parked in waitid(P_PIDFD) for 1 s on one carrier: on a pidfd, not the pool" {
    park_case waitid 0
}

@test "parked in wait() for 1 s on one carrier: naps on time, no hand-off" {
    park_case wait some
}

@test "parked in a FIFO open for 1 s on one carrier: naps on time, no hand-off" {
    park_case fifo some
}

@test "parked in a FIFO read for 1 s on one carrier: naps on time, no hand-off" {
    park_case fiforead any
}

@test "parked in a 256 KiB FIFO write for 1 s on one carrier: naps on time, no hand-off" {
    park_case fifowrite any
}

@test "parked in system(\"sleep 1\") on one carrier: naps on time, no hand-off" {
    park_case system some
}

@test "parked in pclose of \"sleep 1\" on one carrier: naps on time, no hand-off" {
    park_case pclose some
}

@test "getaddrinfo in a loop for 1 s on one carrier: every call in the pool, no hand-off" {
    park_case getaddrinfo some
}

# ---- libffi on demand (fiberized only) ---------------------------------------

@test "libffi is loaded by the first offloaded call, not at start-up" {
    fz_skip_on_musl "the musl library offloads without libffi"
    run_fiberized offload_lazy
    echo "$output"
    [[ $status -eq 0 ]]
    [[ $output == *"at start: 0"* ]]
    [[ $output == *"after a thread's plain calls: 0"* ]]
    [[ $output == *"getaddrinfo: 0"* ]]
    [[ $output == *"after an offloaded call: 1"* ]]
}
