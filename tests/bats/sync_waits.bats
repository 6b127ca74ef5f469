#!/usr/bin/env bats
# rwlocks, barriers, spinlocks and semaphores: same results natively and
# under fiberize (also on one carrier, where a wait that blocked the
# carrier would stall everyone), process-shared objects across fork(), and
# proof that the waits park the fiber instead of blocking its carrier.

load helpers

setup() {
    unset FIBERIZE_WORKERS FIBERIZE_STATS FIBERIZE_HOOKS FIBERIZE_HANDOFF_US
}

# compare_native twice: default carriers, then one carrier.
compare_both() {
    compare_native "$@"
    FIBERIZE_WORKERS=1 compare_native "$@"
}

handoffs() {
    local fz_cmd
    fz_prog_cmd "$2"
    FIBERIZE_WORKERS=1 FIBERIZE_STATS=1 FIBERIZE_HANDOFF_US=40000 FIBERIZE_HOOKS=$1 \
        _fz_timeout "$FZ" -- "${fz_cmd[@]}" "${@:3}" 2>&1 >/dev/null |
        sed -n 's/.*fiberize stats:.* handoffs=\([0-9]*\).*/\1/p'
}

# expect_parks NAME ARGS: on one carrier the program's long waits (>= 50 ms)
# leave the carrier, so the hand-off monitor (period 40 ms here, so that a
# loaded machine's hiccups do not count) never steps in; with the sync hooks
# off the same run needs it, which shows the check can fail.
expect_parks() {
    local hooked unhooked
    hooked=$(handoffs all "$@")
    unhooked=$(handoffs -sync "$@")
    if [[ $hooked != 0 || -z $unhooked || $unhooked == 0 ]]; then
        echo "$*: hand-offs with sync hooks: '$hooked' (want 0), without: '$unhooked' (want > 0)"
        return 1
    fi
}

@test "rwlock: readers hold it together" {
    compare_both sync_rwlock readers
    grep -qx 'readers inside at once: 8 of 8' "$BATS_TEST_TMPDIR/compare_native.sync_rwlock/fiber.out"
}

@test "rwlock: writers exclude readers and writers, exact total" {
    compare_both sync_rwlock writers
    grep -qx 'value 160000 (want 160000), violations 0' \
        "$BATS_TEST_TMPDIR/compare_native.sync_rwlock/fiber.out"
}

@test "rwlock: the writer-nonrecursive kind holds back new readers (until the writer gives up)" {
    fz_skip_on_musl "musl has one rwlock kind, no writer preference"
    compare_both sync_rwlock prefer
    grep -qx 'default: tryrdlock while a writer waits -> 0; order RuW' \
        "$BATS_TEST_TMPDIR/compare_native.sync_rwlock/fiber.out"
    grep -qx 'writer-nonrecursive initializer: tryrdlock while a writer waits -> EBUSY; order uWR' \
        "$BATS_TEST_TMPDIR/compare_native.sync_rwlock/fiber.out"
    grep -qx 'writer-nonrecursive initializer: a waiting writer times out (ETIMEDOUT); order Ru' \
        "$BATS_TEST_TMPDIR/compare_native.sync_rwlock/fiber.out"
}

@test "rwlock: try, timed and error results; timeouts never early" {
    compare_both sync_rwlock errors
    run -1 grep -v ': ok$\|not early$' "$BATS_TEST_TMPDIR/compare_native.sync_rwlock/fiber.out"
}

@test "rwlock: waiters that time out never swallow a wake-up (both kinds)" {
    compare_both sync_rwlock timed
    compare_both sync_rwlock timed-wnr
    grep -qx 'untimed and timed writes add up: yes, violations 0, free after: yes' \
        "$BATS_TEST_TMPDIR/compare_native.sync_rwlock/fiber.out"
}

@test "rwlock: a blocked writer parks, its carrier runs the others" {
    compare_both sync_rwlock park
    expect_parks sync_rwlock park
}

@test "barrier: 1000 threads, 100 rounds, one serial thread per round" {
    compare_both sync_barrier barrier 1000 100
    grep -qx 'pass 1: 1000 threads, 100 rounds, 100 rounds with exactly one serial thread, 0 early leavers' \
        "$BATS_TEST_TMPDIR/compare_native.sync_barrier/fiber.out"
}

@test "spinlock: exact counter across 16 threads whose holders yield" {
    compare_both sync_barrier spin 16 20000
    grep -qx 'spin counter 320000 (want 320000)' \
        "$BATS_TEST_TMPDIR/compare_native.sync_barrier/fiber.out"
}

@test "semaphore: as a lock, exact counter" {
    compare_both sync_sem counter
    grep -qx 'counter 160000 (want 160000), value after 1' \
        "$BATS_TEST_TMPDIR/compare_native.sync_sem/fiber.out"
}

@test "semaphore: bounded queue, exact sum" {
    compare_both sync_sem queue
    grep -qx 'consumed sum exact, items 0, slots 64' \
        "$BATS_TEST_TMPDIR/compare_native.sync_sem/fiber.out"
}

@test "semaphore: waiters that time out never swallow a post" {
    compare_both sync_sem timed
    grep -qx 'tokens: posted 60000, taken and left add up: yes' \
        "$BATS_TEST_TMPDIR/compare_native.sync_sem/fiber.out"
}

@test "semaphore: trywait, timed waits (never early), EINVAL, EOVERFLOW" {
    compare_both sync_sem errors
    run -1 grep -v ': ok$\|not early$\|^value\|: yes$' "$BATS_TEST_TMPDIR/compare_native.sync_sem/fiber.out"
}

@test "semaphore: EINTR from a handler without SA_RESTART, restart with it" {
    compare_both sync_sem eintr
    grep -qx 'handlers ran: 3' "$BATS_TEST_TMPDIR/compare_native.sync_sem/fiber.out"
}

@test "semaphore: sem_post from a signal handler" {
    compare_both sync_sem handler
}

@test "semaphore: a thread that is not a fiber is interrupted in sem_wait as natively" {
    compare_both sync_sem foreign
    grep -qx "non-fiber thread's sem_wait, handler without SA_RESTART: ended, then Interrupted system call" \
        "$BATS_TEST_TMPDIR/compare_native.sync_sem/fiber.out"
}

@test "semaphore: a thread blocked in sem_wait parks, its carrier runs the others" {
    compare_both sync_sem park
    expect_parks sync_sem park
}

@test "process-shared: sem_init pshared across fork, both directions" {
    compare_both sync_pshared sem
    grep -q '200 round trips, 0 wrong, timedwait timed out, not early, child status 0' \
        "$BATS_TEST_TMPDIR/compare_native.sync_pshared/fiber.out"
    expect_parks sync_pshared sem
}

@test "process-shared: sem_open across fork" {
    compare_both sync_pshared named
    grep -q '200 round trips, 0 wrong' "$BATS_TEST_TMPDIR/compare_native.sync_pshared/fiber.out"
}

@test "process-shared: rwlock across fork, each side waits for the other" {
    compare_both sync_pshared rwlock
    grep -q 'parent saw 3 after its rdlock, child errors 0, status 0' \
        "$BATS_TEST_TMPDIR/compare_native.sync_pshared/fiber.out"
    expect_parks sync_pshared rwlock
}

@test "process-shared: barrier across fork, 64 rounds" {
    compare_both sync_pshared barrier
    grep -qx 'barrier: 64 rounds, 64 serial threads, early leavers parent 0 child 0' \
        "$BATS_TEST_TMPDIR/compare_native.sync_pshared/fiber.out"
    expect_parks sync_pshared barrier
}

@test "process-shared: mutex and condvar across fork, turns, a long wait, a timed wait, a counter" {
    compare_both sync_pshared cond
    grep -qx 'cond: 200 turns each, counter 400, errors 0, child status 0' \
        "$BATS_TEST_TMPDIR/compare_native.sync_pshared/fiber.out"
    grep -qx 'mutex: counter 40000 of 40000, child status 0' \
        "$BATS_TEST_TMPDIR/compare_native.sync_pshared/fiber.out"
    expect_parks sync_pshared cond
}

@test "waiters that are not fibers (thread hooks off) share the same objects" {
    export FIBERIZE_HOOKS=-thread
    compare_native sync_rwlock writers
    compare_native sync_rwlock timed
    compare_native sync_rwlock errors
    compare_native sync_barrier barrier 200 50
    compare_native sync_barrier spin 16 20000
    compare_native sync_sem counter
    compare_native sync_sem timed
    compare_native sync_sem eintr
    compare_native sync_pshared sem
}
