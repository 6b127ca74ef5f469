#!/usr/bin/env bats
# Per-fiber thread-local storage (runtime/tls_glibc.c): every thread keeps its own
# __thread variables, errno, stack canary, pthread_self, C++ thread_local
# objects and glibc per-thread state while it blocks and moves between
# carriers; libraries dlopen'ed later get TLS in every thread; short-lived
# threads do not leak.  Each program runs natively and under fiberize with 1
# and 2 carriers, and must print the same thing and exit the same way.

load helpers

# compare_native NAME ARGS... with FIBERIZE_WORKERS unset, =1 and =2.
compare_all_workers() {
    local workers
    for workers in default 1 2; do
        if [[ $workers == default ]]; then
            compare_native "$@" || return 1
        else
            FIBERIZE_WORKERS=$workers compare_native "$@" ||
                { echo "(with FIBERIZE_WORKERS=$workers)"; return 1; }
        fi
    done
}

@test "libfiberize.so has no TLS segment (runtime state must not be per fiber)" {
    run readelf -lW "$FIBERIZE_BUILD/libfiberize.so"
    [[ $status -eq 0 ]] || { echo "readelf failed: $output"; return 1; }
    if grep -q " TLS " <<<"$output"; then
        echo "libfiberize.so has a PT_TLS segment: some __thread variable slipped in"
        return 1
    fi
}

# glibc 2.34 (RHEL 9) is the oldest release the runtime supports: a symbol
# version newer than that would keep the library from loading at all there.
@test "libfiberize.so needs no glibc symbol version newer than 2.34" {
    run objdump -T "$FIBERIZE_BUILD/libfiberize.so"
    [[ $status -eq 0 ]] || { echo "objdump failed: $output"; return 1; }
    local newest
    newest=$(grep -o 'GLIBC_2\.[0-9.]*' <<<"$output" | sort -uV | tail -1)
    echo "newest version needed: $newest"
    [[ -n $newest ]] && [[ $(printf '%s\n' "$newest" GLIBC_2.34 | sort -V | tail -1) == GLIBC_2.34 ]]
}

@test "tls_threads: exe and library __thread, errno across sleep, yield, socket read, mutex (500 threads)" {
    compare_all_workers tls_threads
}

@test "tls_errno: successful blocking calls leave errno alone; failures set the caller's only" {
    compare_all_workers tls_errno
}

@test "tls_dlopen: library with GD and IE TLS dlopen'ed while 1000 threads are blocked" {
    compare_all_workers tls_dlopen 1000
}

@test "tls_dlclose: dlopen/dlclose cycles reuse module ids; recycled threads see fresh images" {
    compare_all_workers tls_dlclose
}

@test "tls_canary: -fstack-protector-all, 1000 threads 200 frames deep sleeping mid-recursion" {
    compare_all_workers tls_canary 1000
}

@test "tls_cxx: thread_local constructors/destructors counted and ordered before key destructors" {
    compare_all_workers tls_cxx
}

@test "tls_self: pthread_self unique among live threads and stable across migrations" {
    compare_all_workers tls_self 200
}

@test "tls_glibc: malloc, stdio locks, dlerror, uselocale, sched_getcpu, lock owners, fresh state" {
    compare_all_workers tls_glibc
}

@test "tls_setxid: setuid/setgid from a thread reach every OS thread and return" {
    compare_all_workers tls_setxid
}

@test "tls_signal: a signal handler never runs on the TLS of a thread running elsewhere" {
    compare_all_workers tls_signal
}

@test "tls_churn: 20000 short-lived threads with TLS and keys match the native run" {
    compare_all_workers tls_churn 20000
}

# Natively a million threads take 30-45 s here; under fiberize about 2 s.
@test "tls_churn: 1000000 short-lived threads, RSS growth after 100k under 20 MB (fiberized only)" {
    [[ -z ${FZ_ASAN:-} ]] || skip "ASan's quarantine keeps freed memory: RSS says nothing"
    for workers in 1 2; do
        FIBERIZE_WORKERS=$workers run_fiberized --separate-stderr tls_churn 1000000 20
        echo "FIBERIZE_WORKERS=$workers: $stderr"
        if [[ $status -ne 0 ||
            $output != "1000000 threads: ok 1000000, key destructors 2000000, not pristine 0, RSS growth over 20 MB: no" ]]; then
            echo "status $status, stdout: $output"
            return 1
        fi
    done
}

@test "tls_layout_mismatch: a layout check that fails turns the runtime off in one line naming field and libc" {
    local fz_cmd
    fz_skip_unloadable tls_layout_mismatch
    fz_prog_cmd tls_layout_mismatch
    run --separate-stderr _fz_timeout "${fz_cmd[@]}"
    local native=$output
    run_fiberized --separate-stderr tls_layout_mismatch
    echo "status $status, stdout: $output"
    echo "stderr: $stderr"
    [[ $status -eq 0 && $output == "$native" && $output == "8 threads, results sum 72" ]]
    if [[ ${FZ_LIBC:-} == musl ]]; then
        [[ $stderr =~ ^"fiberize: runtime off, threads stay native: musl: struct pthread field errno_val "[^$'\n']*$ ]]
    else
        [[ $stderr =~ ^"fiberize: runtime off, threads stay native: glibc "[0-9]+\.[0-9]+": struct pthread field tid "[^$'\n']*$ ]]
    fi
}
