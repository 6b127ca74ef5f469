#!/usr/bin/env bash
# make bench: every benchmark natively and under fiberize in the same run,
# side by side, with the ratio.  Benchmarks are not tests: nothing here
# passes or fails.
#
# 1. Each build/bench/NAME prints `metric<TAB>value<TAB>unit` lines; it runs
#    natively, under fiberize with the default carriers, and with one.
# 2. HTTP: the bundled thread-per-connection server (natively, fiberized)
#    and a single-threaded epoll server answering the same bytes (the
#    limit) under wrk at 50, 1,000 and 10,000 connections; then
#    python3 -m http.server natively and fiberized.
#
# 3. The micro benchmarks fiberized on every other glibc found in
#    ../shared/glibc (FZ_GLIBC_ROOT), beside the system glibc's run made in
#    the same part, with the ratio to it.
#
#   BENCH_ONLY=micro|http|glibc   run one part; BENCH_SECONDS per wrk run (5)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
BUILD=${BUILD:-build}
FZ=$BUILD/bin/fiberize
SECS=${BENCH_SECONDS:-5}
ONLY=${BENCH_ONLY:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# Lower is better for times and sizes, higher for rates and counts.
better_when_lower() {
    case $1 in
    ns | us | ms | s | KiB | MB) return 0 ;;
    *) return 1 ;;
    esac
}

# speedup NATIVE FIBER UNIT: "2.31x" (>1: fiberize is better), or n/a
speedup() {
    awk -v n="$1" -v f="$2" -v lower="$3" 'BEGIN {
        if (n !~ /^[0-9.]+$/ || f !~ /^[0-9.]+$/ || n == 0 || f == 0) { print "n/a"; exit }
        printf "%.2fx\n", lower ? n / f : f / n }'
}

run_bench() { # run_bench OUTFILE CMD...: metric lines, or a note on failure
    local out=$1
    shift
    if ! timeout 120 "$@" >"$out" 2>"$out.err"; then
        echo "(exit $?)" >>"$out.err"
    fi
}

micro() {
    printf '%-32s %14s %14s %14s %10s %10s\n' benchmark native fiberize "fiberize w=1" unit speedup
    local b
    for b in "$BUILD"/bench/*; do
        [[ -x $b ]] || continue
        local name=${b##*/}
        run_bench "$tmp/$name.n" "$b"
        run_bench "$tmp/$name.f" "$FZ" -- "$b"
        run_bench "$tmp/$name.1" "$FZ" --workers 1 -- "$b"
        local metric value unit
        while IFS=$'\t' read -r metric value unit; do
            [[ -n $unit ]] || continue
            local f one lower=0
            f=$(awk -F'\t' -v m="$metric" '$1 == m { print $2 }' "$tmp/$name.f")
            one=$(awk -F'\t' -v m="$metric" '$1 == m { print $2 }' "$tmp/$name.1")
            better_when_lower "$unit" && lower=1
            printf '%-32s %14s %14s %14s %10s %10s\n' "$metric" "$value" "${f:-failed}" \
                "${one:-failed}" "$unit" "$(speedup "$value" "${f:-x}" $lower)"
        done < <(grep -P '^[^\t]+\t[^\t]+\t[^\t]+$' "$tmp/$name.n"; \
                 grep -P '^[^\t]+\t[^\t]+\t[^\t]+$' "$tmp/$name.f" | while IFS=$'\t' read -r m v u; do
                     grep -q "^$m	" "$tmp/$name.n" || printf '%s\tfailed\t%s\n' "$m" "$u"; done)
        [[ -s $tmp/$name.n.err ]] && sed "s/^/# $name native: /" "$tmp/$name.n.err" | head -3
        [[ -s $tmp/$name.f.err ]] && sed "s/^/# $name fiberize: /" "$tmp/$name.f.err" | head -3
    done
    # Settings that trade one cost for another, against the native run above.
    local variant
    # waitpid with the process family off: the real wait, in place, shows what
    # the pidfd wait itself costs apart from the fiberized child's exit.
    for variant in "file_io FIBERIZE_FILE_IO=pool" "waitpid FIBERIZE_HOOKS=-process"; do
        set -- $variant
        [[ -s $tmp/$1.n ]] || continue
        run_bench "$tmp/$1.v" env "$2" "$FZ" -- "$BUILD/bench/$1"
        while IFS=$'\t' read -r metric value unit; do
            local n lower=0
            n=$(awk -F'\t' -v m="$metric" '$1 == m { print $2 }' "$tmp/$1.n")
            better_when_lower "$unit" && lower=1
            printf '%-32s %14s %14s %14s %10s %10s\n' "$metric" "${n:-failed}" "$value" "($2)" \
                "$unit" "$(speedup "${n:-x}" "$value" $lower)"
        done < <(grep -P '^[^\t]+\t[^\t]+\t[^\t]+$' "$tmp/$1.v")
    done
}

# start_server LABEL CMD...: sets $server_pid and $server_port
start_server() {
    local label=$1 i
    shift
    # The file exists before the poll below reads it: the child opens it
    # only once it runs.
    : >"$tmp/$label.out"
    "$@" >"$tmp/$label.out" 2>"$tmp/$label.err" &
    server_pid=$!
    server_port=
    for ((i = 0; i < 200; i++)); do
        server_port=$(sed -n 's/^listening on //p' "$tmp/$label.out")
        [[ -n $server_port ]] && return 0
        sleep 0.05
    done
    return 1
}

stop_server() {
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
}

# wrk_run URL CONNS: "req/s p99 errors"
wrk_run() {
    local threads=2
    timeout $((SECS + 60)) wrk -t$threads -c"$2" -d"${SECS}s" --latency "$1" >"$tmp/wrk.out" 2>&1
    local rps p99 errs
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.out")
    p99=$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.out")
    errs=$(awk '/Socket errors/ { $1 = $1; print }' "$tmp/wrk.out" | sed 's/Socket errors: //')
    echo "${rps:-failed} ${p99:-?} ${errs:-none}"
}

http() {
    if ! command -v wrk >/dev/null; then
        echo "http: wrk not installed (scripts/deps.sh); skipped"
        return
    fi
    local server=$BUILD/tests/programs/http_server epoll=$BUILD/tests/programs/http_epoll
    printf '\n%-8s %-26s %12s %10s  %s\n' conns server "req/s" p99 "socket errors"
    local conns label
    for conns in 50 1000 10000; do
        if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $((conns + 200)) ]]; then
            echo "$conns connections: fd limit $(ulimit -n) too low, skipped"
            continue
        fi
        declare -A rps=()
        for label in native fiberize epoll; do
            case $label in
            native) start_server $label "$server" 0 ;;
            fiberize) start_server $label "$FZ" -- "$server" 0 ;;
            epoll) start_server $label "$epoll" 0 ;;
            esac || { echo "$label server did not start"; continue; }
            read -r r p e < <(wrk_run "http://127.0.0.1:$server_port/" "$conns")
            stop_server
            rps[$label]=$r
            printf '%-8s %-26s %12s %10s  %s\n' "$conns" "$label" "$r" "$p" "$e"
        done
        printf '%-8s %-26s %12s\n' "$conns" "fiberize/native" "$(speedup "${rps[native]}" "${rps[fiberize]}" 0)"
        printf '%-8s %-26s %12s\n' "$conns" "fiberize/epoll" "$(speedup "${rps[epoll]}" "${rps[fiberize]}" 0)"
    done
    # python3 -m http.server (ThreadingHTTPServer): the same wrk run on the
    # same file, natively and fiberized, and the ratio.
    local port dir=$tmp/www py=/usr/bin/python3 fz_abs i
    fz_abs=$(realpath "$FZ")
    mkdir -p "$dir" && head -c 4096 /dev/urandom >"$dir/f.bin"
    declare -A pyrps=()
    for label in native fiberize; do
        port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        if [[ $label == native ]]; then
            (cd "$dir" && exec $py -m http.server "$port" --bind 127.0.0.1) >/dev/null 2>&1 &
        else
            (cd "$dir" && exec "$fz_abs" -- $py -m http.server "$port" --bind 127.0.0.1) >/dev/null 2>&1 &
        fi
        server_pid=$!
        for ((i = 0; i < 200; i++)); do # until it listens, at most 10 s
            $py -c "import socket,sys; sys.exit(socket.socket().connect_ex(('127.0.0.1',$port)))" && break
            sleep 0.05
        done
        read -r r p e < <(wrk_run "http://127.0.0.1:$port/f.bin" 50)
        stop_server
        pyrps[$label]=$r
        printf '%-8s %-26s %12s %10s  %s\n' 50 "python http.server $label" "$r" "$p" "$e"
    done
    printf '%-8s %-26s %12s\n' 50 "python fiberize/native" "$(speedup "${pyrps[native]}" "${pyrps[fiberize]}" 0)"
}

# glibc_versions: the directories of the other glibcs present
glibc_versions() {
    local root=${FZ_GLIBC_ROOT:-../shared/glibc} ld
    for ld in "$root"/*/lib/ld-linux-x86-64.so.2; do
        [[ -x $ld ]] && echo "${ld%/lib/ld-linux-x86-64.so.2}"
    done
}

glibcs() {
    local dirs=() d
    mapfile -t dirs < <(glibc_versions)
    if [[ ${#dirs[@]} -eq 0 ]]; then
        echo
        echo "glibc: no other glibc under ${FZ_GLIBC_ROOT:-../shared/glibc}; skipped"
        return
    fi
    local system
    system=$(getconf GNU_LIBC_VERSION | awk '{ print $2 }')
    printf '
%-32s %14s' "fiberized, by glibc" "$system"
    for d in "${dirs[@]}"; do printf ' %14s %8s' "${d##*/}" ratio; done
    printf ' %10s
' unit
    local b
    for b in "$BUILD"/bench/*; do
        [[ -x $b ]] || continue
        local name=${b##*/}
        run_bench "$tmp/$name.sys" "$FZ" -- "$b"
        for d in "${dirs[@]}"; do
            run_bench "$tmp/$name.g.${d##*/}" "$FZ" -- "$d/lib/ld-linux-x86-64.so.2" \
                --library-path "$d/lib" --argv0 "$b" "$b"
        done
        local metric value unit
        while IFS=$'\t' read -r metric value unit; do
            [[ -n $unit ]] || continue
            local lower=0 v
            better_when_lower "$unit" && lower=1
            printf '%-32s %14s' "$metric" "$value"
            for d in "${dirs[@]}"; do
                v=$(awk -F'\t' -v m="$metric" '$1 == m { print $2 }' "$tmp/$name.g.${d##*/}")
                printf ' %14s %8s' "${v:-failed}" "$(speedup "$value" "${v:-x}" $lower)"
            done
            printf ' %10s\n' "$unit"
        done < <(grep -P '^[^\t]+\t[^\t]+\t[^\t]+$' "$tmp/$name.sys")
        for d in "${dirs[@]}"; do
            [[ -s $tmp/$name.g.${d##*/}.err ]] &&
                sed "s/^/# $name on ${d##*/}: /" "$tmp/$name.g.${d##*/}.err" | head -3
        done
    done
    echo "(ratio: the other glibc's figure against $system's, >1 is better)"
}

echo "fiberize bench: $(nproc) CPUs, $(uname -r); native and fiberized in the same run"
[[ -z $ONLY || $ONLY == micro ]] && micro
[[ -z $ONLY || $ONLY == http ]] && http
[[ -z $ONLY || $ONLY == glibc ]] && glibcs
true
