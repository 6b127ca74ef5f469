#!/usr/bin/env bats
# The runtime's own fds (driver epoll and eventfd, pidfds, signalfds) are out
# of the program's reach: closing "every fd", dup2 onto any number, listing
# /proc/self/fd behave as natively.  Also: vfork children never park, and
# timed waits keep their deadline when the process is out of fds.
# Every case runs on one and on two carriers.
load helpers

# each_carrier_count CMD...: CMD with FIBERIZE_WORKERS=1, then =2.
each_carrier_count() {
    local w
    for w in 1 2; do
        echo "# FIBERIZE_WORKERS=$w"
        FIBERIZE_WORKERS=$w "$@" || return 1
    done
}

# The files the program wrote hold exactly what it wrote (checked after the
# fiberized run, which comes second).
closeall() {
    compare_native fds_closeall "$1" "$BATS_TEST_TMPDIR" || return 1
    [[ $(cat "$BATS_TEST_TMPDIR/a") == first && $(stat -c %s "$BATS_TEST_TMPDIR/a") == 6 ]] || {
        echo "file a: $(od -c "$BATS_TEST_TMPDIR/a" | head -5)"
        return 1
    }
    [[ $(cat "$BATS_TEST_TMPDIR/b") == second && $(stat -c %s "$BATS_TEST_TMPDIR/b") == 7 ]] || {
        echo "file b: $(od -c "$BATS_TEST_TMPDIR/b" | head -5)"
        return 1
    }
}

@test "closefrom(3): nothing spins, nothing writes into the program's files" {
    each_carrier_count closeall closefrom
}

@test "close_range(3, ~0, 0) returns 0 and closes everything of the program's" {
    each_carrier_count closeall close_range
}

@test "syscall(SYS_close_range, 3, ~0, 0)" {
    each_carrier_count closeall syscall_close_range
}

@test "close loop up to sysconf(_SC_OPEN_MAX)" {
    each_carrier_count closeall close_loop
}

@test "close_range CLOSE_RANGE_CLOEXEC: new files get 3 and 4, an exec'd program inherits nothing of ours" {
    each_carrier_count closeall close_range_cloexec
}

@test "closefrom and a close loop with a soft limit below the hard one" {
    ulimit -Sn 1024
    each_carrier_count closeall closefrom
    each_carrier_count closeall close_loop
}

@test "dup2/dup3 onto every number up to the limit; the runtime still works" {
    each_carrier_count compare_native fds_dup2
}

@test "dup2/dup3 onto every number below a soft limit of 1024; 1024 is EBADF" {
    ulimit -Sn 1024
    each_carrier_count compare_native fds_dup2
}

@test "a program that raises its soft limit, then dup2s onto every number" {
    ulimit -Sn 1024
    each_carrier_count compare_native fds_dup2 raise
}

@test "/proc/self/fd, /dev/fd, fdinfo, getdents64 and an fcntl probe list the same fds" {
    each_carrier_count compare_native fds_list
}

@test "/proc/self/fd listings with a soft limit below the hard one" {
    ulimit -Sn 1024
    each_carrier_count compare_native fds_list
}

# Run CMD with every fd above 2 closed.
closefrom3() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        ((fd > 2)) && eval "exec $fd>&-"
    done
    "$@"
}

# bash moves the files it opens onto 3 and 4 with dup2.  It starts with
# only 0-2 open (bats keeps some low fds open), as from a terminal.
bash_exec_fds() {
    local dir=$BATS_TEST_TMPDIR/$1 script='exec 3>f 4>g; echo hi >&3; sleep 0.2; echo there >&4; exec 3>&- 4>&-; echo done'
    mkdir -p "$dir/native" "$dir/fiber"
    (cd "$dir/native" && closefrom3 _fz_timeout bash -c "$script") >"$dir/native.out" || return 1
    (cd "$dir/fiber" && closefrom3 _fz_timeout "$FZ" -- bash -c "$script") >"$dir/fiber.out" || {
        echo "fiberized bash failed or hung"
        return 1
    }
    cmp "$dir/native.out" "$dir/fiber.out" || return 1
    cmp "$dir/native/f" "$dir/fiber/f" || { od -c "$dir/fiber/f" | head; return 1; }
    cmp "$dir/native/g" "$dir/fiber/g" || { od -c "$dir/fiber/g" | head; return 1; }
}

@test "bash -c 'exec 3>f 4>g; ...' writes the same files and ends" {
    [[ -z ${FZ_ASAN:-} ]] || skip "Debian's bash cannot load an ASan-built preload"
    FIBERIZE_WORKERS=1 bash_exec_fds w1
    FIBERIZE_WORKERS=2 bash_exec_fds w2
}

@test "vfork children that sleep or poll before exec: the parent goes on" {
    each_carrier_count compare_native vfork_park
}

@test "out of fds: sigtimedwait, poll, sleep and waitpid still end at their deadline" {
    each_carrier_count compare_native waits_nofd
}

# The monitor reads its carriers' /proc stat files; opened at every look,
# each took the lowest free number for an instant (100-270 collisions a
# second here before runtime/monitor.c kept them open).
@test "close(n); open() lands on n while a thread blocks where fiberize cannot see" {
    each_carrier_count compare_native fds_lowest_free
}

# A close of a number nothing used must not grow the runtime's per-number
# table: eb9844c grew 2.1 MiB here (limit 20,000), 112 MiB at a 1M limit.
@test "a close loop up to the fd limit costs no memory" {
    compare_native close_loop_memory
}
