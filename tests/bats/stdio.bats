#!/usr/bin/env bats
# stdio on pipes and sockets (syscalls/stdio_glibc.c): the stream calls
# park the fiber where glibc's internal read/write would block its carrier,
# with the contract of each call unchanged.
load helpers

# On musl stdio is not interposed: its waits block a carrier as before
# (and pthread_cancel cannot end one), so only the file case applies.
glibc_only() {
    [[ ${FZ_LIBC:-} != musl ]] || skip "stdio parks on glibc only (syscalls/stdio_glibc.c)"
}

@test "stdio contract on pipes and sockets: lines, NULs, O_NONBLOCK, timeouts, signals, buffering, r+, EPIPE, scanf, cancel" {
    glibc_only
    compare_native stdio_lines contract
}

@test "stdio contract on one carrier" {
    glibc_only
    FIBERIZE_WORKERS=1 compare_native stdio_lines contract
}

@test "stdio contract with _FORTIFY_SOURCE (the __printf_chk family)" {
    glibc_only
    compare_native stdio_fortify contract
}

@test "200 threads of fdopen + fgets: same answers, no more than 2 x carriers OS threads" {
    glibc_only
    compare_native stdio_lines pingpong 100 300
    # What is counted is whether threads waiting in fgets hold OS threads.
    # On a slow 2-core VM, main's creation loop and pairs that find every
    # answer ready (no park, no switch) run one fiber past the default
    # 2 ms hand-off period, and the monitor's long-run rule gave them 2-4
    # spares (5-7 OS threads); 20 ms keeps that rule out of this count.
    # fgets blocking its carrier, as before the stdio hooks, still needs
    # a hand-off per blocked wait (~100-200 OS threads).
    FIBERIZE_HANDOFF_US=20000 FIBERIZE_WORKERS=2 \
        run_fiberized --separate-stderr stdio_lines pingpong 100 300
    [ "$status" -eq 0 ]
    local threads
    threads=$(sed -n 's/^os_threads_max=//p' <<<"$stderr")
    echo "OS threads at most: $threads"
    # two carriers; before, every thread waiting in fgets held one (~100-200)
    [ "$threads" -le 4 ]
}

# The wake-up that never came: with one carrier and no hand-off for 10 s, a
# reader that blocked the carrier in glibc's read would leave the writer
# thread, on the same carrier, no way to run.
@test "one carrier: a reader in fgets is woken by a writer thread of the same process" {
    glibc_only
    FIBERIZE_WORKERS=1 FIBERIZE_HANDOFF_US=10000000 FIBERIZE_STATS=1 FZ_TIMEOUT=5 \
        run_fiberized --separate-stderr stdio_lines wake
    [ "$status" -eq 0 ]
    [ "$output" = "wake: woken|" ]
    grep -q ' handoffs=0 ' <<<"$stderr"
}

@test "regular files: no read or poll added (the fd is classified once, by one epoll_ctl, as read(2) does)" {
    command -v strace >/dev/null || skip "no strace"
    [[ -z ${FZ_ASAN:-} ]] || skip "Debian's sed cannot load an ASan-built preload"
    fz_prog_cmd stdio_lines
    local dir=$BATS_TEST_TMPDIR
    printf 'one\ntwo\nthree\n' >"$dir/in.txt"
    # cat-like: fgets from a file, fputs to a file; count the calls on them
    FZ_TIMEOUT=30 run strace -f -e trace=read,write,poll,ppoll -o "$dir/native.st" \
        "$(command -v sed)" -n p "$dir/in.txt"
    FZ_TIMEOUT=30 run strace -f -e trace=read,write,poll,ppoll -o "$dir/fz.st" \
        "$FZ" -- "$(command -v sed)" -n p "$dir/in.txt"
    [ "$output" = "$(printf 'one\ntwo\nthree')" ]
    local native fz
    native=$(grep -c 'read(3\|poll' "$dir/native.st" || true)
    fz=$(grep -c 'read(3\|poll' "$dir/fz.st" || true)
    echo "reads and polls on the file: native $native, fiberized $fz"
    [ "$native" -eq "$fz" ]
}
