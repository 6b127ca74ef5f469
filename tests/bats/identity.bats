#!/usr/bin/env bats
# Thread identity: gettid(), syscall(SYS_gettid), tids handed to the kernel,
# pthread_getattr_np on the main thread, natively and fiberized.

load helpers

@test "thread ids: main is the pid, others unique, stable, reach their thread by tgkill" {
    compare_native ident_tid
}

@test "thread ids on one carrier" {
    FIBERIZE_WORKERS=1 compare_native ident_tid
}

@test "thread ids on two carriers" {
    FIBERIZE_WORKERS=2 compare_native ident_tid
}

@test "thread names: prctl PR_SET_NAME/PR_GET_NAME per thread, pthread_{set,get}name_np agree" {
    compare_native ident_names
}

@test "thread names on one carrier" {
    FIBERIZE_WORKERS=1 compare_native ident_names
}

@test "thread names on two carriers" {
    FIBERIZE_WORKERS=2 compare_native ident_names
}

@test "CPU affinity per thread: pin oneself, inherit, others unaffected, set another's" {
    compare_native ident_affinity
}

@test "CPU affinity per thread on one carrier" {
    FIBERIZE_WORKERS=1 compare_native ident_affinity
}

@test "CPU affinity per thread on two carriers" {
    FIBERIZE_WORKERS=2 compare_native ident_affinity
}

# glibc and musl handed a fiber's fake tid to the kernel: even
# pthread_getschedparam(pthread_self()) failed (EPERM, ESRCH).
@test "scheduling policy per thread: pthread_{get,set}schedparam, setschedprio, EINVAL, inherited" {
    compare_native sched_policy
}

@test "scheduling policy per thread on one carrier" {
    FIBERIZE_WORKERS=1 compare_native sched_policy
}

@test "thread CPU clocks: spinners' share, sleeper ~0, monotonic, other threads' clocks, RUSAGE_THREAD" {
    compare_native ident_cputime
}

@test "thread CPU clocks on one carrier" {
    FIBERIZE_WORKERS=1 compare_native ident_cputime
}

@test "thread CPU clocks on two carriers" {
    FIBERIZE_WORKERS=2 compare_native ident_cputime
}

# The main fiber's stack is worked out at start-up without /proc/self/maps
# (runtime/tls_glibc.c) for a finite RLIMIT_STACK below 1 TiB, and asked of
# glibc otherwise: each limit natively and fiberized.  The program is
# glibc-only; its skip is taken here, as a skip inside the ulimit subshell
# would only end the subshell and pass the test unrun.
@test "pthread_getattr_np on the main thread: glibc's top and size, RLIMIT_STACK 8 MiB, 1 MiB, 64 MiB" {
    fz_skip_unloadable ident_main_stack
    for kib in 8192 1024 65536; do
        (ulimit -s "$kib" && compare_native ident_main_stack) || { echo "ulimit -s $kib"; return 1; }
    done
}

@test "pthread_getattr_np on the main thread: RLIMIT_STACK unlimited and 2 TiB (glibc asked)" {
    fz_skip_unloadable ident_main_stack
    for kib in unlimited 2147483648; do
        (ulimit -s "$kib" && compare_native ident_main_stack) || { echo "ulimit -s $kib"; return 1; }
    done
}
