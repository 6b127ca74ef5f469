#!/usr/bin/env bash
# make bench: every benchmark natively and under fiberize in the same run,
# side by side, with the ratio.  Benchmarks are not tests: nothing here
# passes or fails.
#
# 1. Each build/bench/NAME prints `metric<TAB>value<TAB>unit` lines; it runs
#    natively, under fiberize with the default carriers, and with one.
# 2. HTTP: the bundled thread-per-connection server (natively, fiberized),
#    a single-threaded epoll server answering the same bytes (the limit)
#    and the two peers a user would pick instead of fiberize, a goroutine-
#    per-connection Go server and a task-per-connection Tokio server
#    (bench/peers/, built here when go / cargo and Debian's tokio crates
#    are present, skipped with a line saying why when not), under wrk at
#    50, 1,000 and 10,000 connections; then python3 -m http.server
#    natively and fiberized.
#
# 3. The micro benchmarks fiberized on every other glibc found in
#    ../shared/glibc (FZ_GLIBC_ROOT), beside the system glibc's run made in
#    the same part, with the ratio to it.
#
# 4. The micro benchmarks built with musl-gcc (build/musl/bench), natively
#    and fiberized on libfiberize-musl.so, beside the glibc rows of part 1
#    (run here if part 1 was not), with the musl ratio from the same run.
#
# 5. fork and waitpid on their own (BENCH_ONLY=fork; part 1 has their rows
#    too): bench/waitpid and bench/fork natively, fiberized and with the
#    process family off, BENCH_FORK_ROUNDS times (3), one line per round,
#    so the ratios of one run sit beside the next on a loaded machine.
#
# 6. Idle connections (BENCH_ONLY=idle): 5,000 keep-alive connections that
#    wait while 10 are busy, the thread-per-connection server natively and
#    fiberized, req/s and p99 side by side.
#
#   BENCH_ONLY=micro|http|idle|glibc|musl|seed|stdio|fork   run one part; BENCH_SECONDS per wrk run (5)
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

# build_error FILE: the line of a failed build's output that says why.
build_error() {
    grep -m1 -E '^(error|.*: )' "$1" || grep -m1 . "$1" || echo "no output"
}

# build_go: $BUILD/peers/http_go from bench/peers/go/main.go, offline (the
# standard library only; caches under BUILD, not the user's home).  Sets
# go_bin, or prints why the Go peer is skipped.
build_go() {
    go_bin=
    local go=${GO:-go} out=$BUILD/peers/http_go abs
    if ! command -v "$go" >/dev/null; then
        echo "Go peer: skipped, $go not installed (golang-go; scripts/deps.sh)"
        return
    fi
    abs=$(realpath -m "$BUILD/peers") # go wants absolute cache paths
    mkdir -p "$abs"
    if ! GOCACHE=$abs/go-cache GOPATH=$abs/go-path GOPROXY=off GOFLAGS='' GO111MODULE='' \
        "$go" build -o "$out" bench/peers/go/main.go >"$tmp/go-build.err" 2>&1; then
        echo "Go peer: skipped, go build failed: $(build_error "$tmp/go-build.err")"
        return
    fi
    go_bin=$out
    go_version=$("$go" env GOVERSION 2>/dev/null)
}

# build_tokio: $BUILD/peers/http_tokio from bench/peers/tokio, offline
# against the crates Debian installs (its .cargo/config.toml), built in a
# copy under BUILD so neither Cargo.lock nor target/ lands in the source
# tree.  Sets tokio_bin, or prints why the Tokio peer is skipped.
build_tokio() {
    tokio_bin=
    local cargo=${CARGO:-cargo} dir=$BUILD/peers tokio_dir
    if ! command -v "$cargo" >/dev/null; then
        echo "Tokio peer: skipped, $cargo not installed (cargo, rustc; scripts/deps.sh)"
        return
    fi
    tokio_dir=$(compgen -G '/usr/share/cargo/registry/tokio-1.*' | tail -1)
    if [[ -z $tokio_dir ]]; then
        echo "Tokio peer: skipped, no tokio crate under /usr/share/cargo/registry (librust-tokio-dev; scripts/deps.sh)"
        return
    fi
    mkdir -p "$dir/tokio-src"
    # -a keeps the times, so an unchanged source is not rebuilt.
    cp -a bench/peers/tokio/. "$dir/tokio-src/"
    if ! (cd "$dir/tokio-src" &&
        "$cargo" build --release --offline --quiet --target-dir ../tokio-target) \
        >"$tmp/tokio-build.err" 2>&1; then
        echo "Tokio peer: skipped, cargo build failed: $(build_error "$tmp/tokio-build.err")"
        return
    fi
    cp "$dir/tokio-target/release/http_tokio" "$dir/http_tokio"
    tokio_bin=$dir/http_tokio
    tokio_version=${tokio_dir##*/}
}

# raw_response PORT OUT: what the server at PORT sends, byte for byte, for
# two pipelined requests on one connection, the second asking to close;
# read until the server closes or 1 s of quiet (http_epoll keeps it open).
raw_response() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET / HTTP/1.1\r\nHost: bench\r\n\r\nGET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&"$fd"
    timeout 1 cat <&"$fd" >"$2"
    exec {fd}>&-
}

# same_bytes: each peer's response against http_server's; one line either
# way, naming any peer that differs (its figures would not compare).
same_bytes() {
    local server=$1 label bin ok=() bad=()
    start_server ref "$server" 0 || { echo "responses: http_server did not start; not compared"; return; }
    raw_response "$server_port" "$tmp/ref.bytes"
    stop_server
    for label in epoll Go Tokio; do
        case $label in
        epoll) bin=$BUILD/tests/programs/http_epoll ;;
        Go) bin=$go_bin ;;
        Tokio) bin=$tokio_bin ;;
        esac
        [[ -n $bin ]] || continue
        start_server "cmp-$label" "$bin" 0 || { bad+=("$label (did not start)"); continue; }
        raw_response "$server_port" "$tmp/$label.bytes"
        stop_server
        if [[ -s $tmp/ref.bytes ]] && cmp -s "$tmp/ref.bytes" "$tmp/$label.bytes"; then
            ok+=("$label")
        else
            bad+=("$label ($(wc -c <"$tmp/$label.bytes") bytes against $(wc -c <"$tmp/ref.bytes"): $(cmp "$tmp/ref.bytes" "$tmp/$label.bytes" 2>&1 | head -1 | sed "s|$tmp/||g"))")
        fi
    done
    [[ ${#ok[@]} -gt 0 ]] && echo "responses: ${ok[*]} byte-identical to http_server's ($(wc -c <"$tmp/ref.bytes") bytes for 2 requests)"
    local b
    for b in "${bad[@]}"; do echo "responses: MISMATCH $b"; done
}

http() {
    if ! command -v wrk >/dev/null; then
        echo "http: wrk not installed (scripts/deps.sh); skipped"
        return
    fi
    local server=$BUILD/tests/programs/http_server epoll=$BUILD/tests/programs/http_epoll
    local go_bin tokio_bin go_version='?' tokio_version='?' peers=(native fiberize epoll)
    build_go
    build_tokio
    [[ -n $go_bin ]] && peers+=(Go) && echo "Go peer: $go_version, GOMAXPROCS default ($(nproc))"
    [[ -n $tokio_bin ]] && peers+=(Tokio) && echo "Tokio peer: $tokio_version, default multi-thread runtime ($(nproc) workers)"
    same_bytes "$server"
    local side=()
    printf '\n%-8s %-26s %12s %10s  %s\n' conns server "req/s" p99 "socket errors"
    local conns label
    for conns in 50 1000 10000; do
        if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $((conns + 200)) ]]; then
            echo "$conns connections: fd limit $(ulimit -n) too low, skipped"
            continue
        fi
        declare -A rps=()
        for label in "${peers[@]}"; do
            case $label in
            native) start_server $label "$server" 0 ;;
            fiberize) start_server $label "$FZ" -- "$server" 0 ;;
            epoll) start_server $label "$epoll" 0 ;;
            Go) start_server $label "$go_bin" 0 ;;
            Tokio) start_server $label "$tokio_bin" 0 ;;
            esac || { echo "$label server did not start"; continue; }
            read -r r p e < <(wrk_run "http://127.0.0.1:$server_port/" "$conns")
            stop_server
            rps[$label]=$r
            printf '%-8s %-26s %12s %10s  %s\n' "$conns" "$label" "$r" "$p" "$e"
        done
        printf '%-8s %-26s %12s\n' "$conns" "fiberize/native" "$(speedup "${rps[native]}" "${rps[fiberize]}" 0)"
        printf '%-8s %-26s %12s\n' "$conns" "fiberize/epoll" "$(speedup "${rps[epoll]}" "${rps[fiberize]}" 0)"
        [[ -n $go_bin ]] &&
            printf '%-8s %-26s %12s\n' "$conns" "fiberize/Go" "$(speedup "${rps[Go]:-x}" "${rps[fiberize]}" 0)"
        [[ -n $tokio_bin ]] &&
            printf '%-8s %-26s %12s\n' "$conns" "fiberize/Tokio" "$(speedup "${rps[Tokio]:-x}" "${rps[fiberize]}" 0)"
        local row
        row=$(printf '%-8s' "$conns")
        for label in "${peers[@]}"; do row+=$(printf ' %10s' "${rps[$label]:-failed}"); done
        for label in "${peers[@]}"; do
            [[ $label == fiberize ]] || row+=$(printf ' %9s' "$(speedup "${rps[$label]:-x}" "${rps[fiberize]:-x}" 0)")
        done
        side+=("$row")
    done
    # The same req/s side by side, one line per connection count, with
    # fiberize's ratio to each of the others (>1: fiberize is faster).
    if [[ ${#side[@]} -gt 0 ]]; then
        printf '\nreq/s    '
        for label in "${peers[@]}"; do printf ' %10s' "$label"; done
        for label in "${peers[@]}"; do [[ $label == fiberize ]] || printf ' %9s' "fz/$label"; done
        printf '\n'
        printf '%s\n' "${side[@]}"
        echo
    fi
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

# idle: IDLE_CONNS (5,000) keep-alive connections that each made one
# request and then wait (bench/idle_holder.py), while wrk drives 10 busy
# ones; the thread-per-connection server natively and fiberized, BENCH_
# IDLE_ROUNDS (3) rounds alternating the two, req/s and p99 of each, and
# fiberize's ratios from the same round.
idle_part() {
    if ! command -v wrk >/dev/null; then
        echo "idle: wrk not installed (scripts/deps.sh); skipped"
        return
    fi
    local server=$BUILD/tests/programs/http_server idle=${IDLE_CONNS:-5000}
    local rounds=${BENCH_IDLE_ROUNDS:-3} round label holder_fd held i
    if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $((idle + 200)) ]]; then
        echo "idle: fd limit $(ulimit -n) too low for $idle connections, skipped"
        return
    fi
    printf '\n%-6s %-10s %12s %10s %12s %10s  %s\n' round server "req/s" p99 "idle held" \
        "threads" "socket errors"
    for ((round = 1; round <= rounds; round++)); do
        declare -A rps=() p99=()
        for label in native fiberize; do
            case $label in
            native) start_server $label "$server" 0 ;;
            fiberize) start_server $label "$FZ" -- "$server" 0 ;;
            esac || { echo "$label server did not start"; continue; }
            # the holder keeps its sockets until its stdin (a FIFO) closes
            rm -f "$tmp/hold.in" && mkfifo "$tmp/hold.in"
            python3 bench/idle_holder.py "$server_port" "$idle" <"$tmp/hold.in" \
                >"$tmp/hold.out" 2>"$tmp/hold.err" &
            local holder=$!
            exec {holder_fd}>"$tmp/hold.in"
            held=
            for ((i = 0; i < 1200; i++)); do # at most 60 s
                held=$(sed -n 's/^holding //p' "$tmp/hold.out")
                kill -0 "$holder" 2>/dev/null || break
                [[ -n $held ]] && break
                sleep 0.05
            done
            local threads
            threads=$(ls "/proc/$server_pid/task" 2>/dev/null | wc -l)
            read -r r p e < <(wrk_run "http://127.0.0.1:$server_port/" 10)
            exec {holder_fd}>&-
            wait "$holder" 2>/dev/null
            stop_server
            rps[$label]=$r
            p99[$label]=$p
            printf '%-6s %-10s %12s %10s %12s %10s  %s\n' "$round" "$label" "$r" "$p" \
                "${held:-failed}" "$threads" "$e"
        done
        printf '%-6s %-10s %12s %10s\n' "$round" "fz/native" \
            "$(speedup "${rps[native]:-x}" "${rps[fiberize]:-x}" 0)" \
            "$(speedup "$(to_us "${p99[native]:-x}")" "$(to_us "${p99[fiberize]:-x}")" 1)"
    done
}

# to_us WRK_TIME: wrk's "812.00us" / "1.20ms" / "2.01s" in microseconds
to_us() {
    awk -v t="$1" 'BEGIN {
        if (t ~ /us$/) { sub(/us$/, "", t); print t + 0; exit }
        if (t ~ /ms$/) { sub(/ms$/, "", t); print t * 1000; exit }
        if (t ~ /s$/) { sub(/s$/, "", t); print t * 1000000; exit }
        print "x" }'
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

# 4. What a deterministic schedule costs (fiberize --seed, runtime/det.c):
#    the spawn and ping-pong benchmarks on one carrier, normally and under
#    --seed.  Their own figures are on the virtual clock under --seed, so
#    this part times whole runs with the real one: per thread created for
#    spawn_join (it runs for a time, not a count), per run for the others
#    (fixed counts).
seeded() {
    printf '\n%-28s %12s %12s %8s\n' "--seed cost" "--workers 1" "--seed 1" ratio
    local name mode
    for name in spawn_join condvar_pingpong io_pingpong; do
        [[ -x $BUILD/bench/$name ]] || continue
        declare -A per=()
        for mode in "--workers 1" "--seed 1"; do
            local t0 t1 made
            t0=$(date +%s%N)
            # shellcheck disable=SC2086 # mode is an option and its value
            FIBERIZE_STATS=1 timeout 120 "$FZ" $mode -- "$BUILD/bench/$name" >/dev/null 2>"$tmp/seed.err"
            t1=$(date +%s%N)
            made=$(grep -o 'fibers_created=[0-9]*' "$tmp/seed.err" | tail -1 | cut -d= -f2)
            if [[ $name == spawn_join && ${made:-0} -gt 0 ]]; then
                per[$mode]=$(awk -v ns=$((t1 - t0)) -v n="$made" 'BEGIN { printf "%.3f", ns / n / 1000 }')
            else
                per[$mode]=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e6 }')
            fi
        done
        local unit="ms/run"
        [[ $name == spawn_join ]] && unit="us/thread"
        printf '%-28s %12s %12s %8s\n' "$name ($unit)" "${per[--workers 1]}" "${per[--seed 1]}" \
            "$(awk -v a="${per[--workers 1]}" -v b="${per[--seed 1]}" 'BEGIN { if (a > 0) printf "%.2fx", b / a }')"
        unset per
    done
    echo "(ratio: --seed's real time against one carrier's, lower is better; the issue's bound is 3x)"
}

# 6. stdio on sockets (syscalls/stdio_glibc.c): the line protocol of
#    bench/stdio_lines (fdopen + fprintf + fflush + fgets per thread pair)
#    at 200 and 2,000 threads, natively and fiberized, with the most OS
#    threads each run had (fiberize's bound: 2 x carriers) and the
#    carrier hand-offs, which a stdio wait that blocked its carrier causes.
stdio_part() {
    printf '\n%-26s %12s %12s %8s %10s %10s %9s\n' "stdio lines (round trips/s)" native fiberize ratio \
        "threads n" "threads f" handoffs
    local pairs rounds
    for pairs in 100 1000; do
        rounds=$((200000 / pairs))
        run_bench "$tmp/stdio.n" "$BUILD/bench/stdio_lines" "$pairs" "$rounds" stdio
        FIBERIZE_STATS=1 run_bench "$tmp/stdio.f" "$FZ" -- "$BUILD/bench/stdio_lines" "$pairs" "$rounds" stdio
        local n f tn tf h
        n=$(cut -f2 "$tmp/stdio.n")
        f=$(cut -f2 "$tmp/stdio.f")
        tn=$(sed -n 's/^os threads, stdio lines: //p' "$tmp/stdio.n.err")
        tf=$(sed -n 's/^os threads, stdio lines: //p' "$tmp/stdio.f.err")
        h=$(grep -o ' handoffs=[0-9]*' "$tmp/stdio.f.err" | tail -1 | cut -d= -f2)
        printf '%-26s %12s %12s %8s %10s %10s %9s\n' "$((2 * pairs)) threads" "${n:-failed}" \
            "${f:-failed}" "$(speedup "${n:-x}" "${f:-x}" 0)" "${tn:-?}" "${tf:-?}" "${h:-?}"
    done
}

echo "fiberize bench: $(nproc) CPUs, $(uname -r); native and fiberized in the same run"
# metric_of FILE METRIC: the value FILE reports for METRIC, empty if none.
metric_of() {
    awk -F'\t' -v m="$2" '$1 == m { print $2 }' "$1" 2>/dev/null
}

musl() {
    if [[ ! -f $BUILD/libfiberize-musl.so ]] || ! compgen -G "$BUILD/musl/bench/*" >/dev/null; then
        echo "musl: libfiberize-musl.so or build/musl/bench missing (make builds them when musl-gcc is installed): skipped"
        return
    fi
    printf '%-32s %12s %12s %12s %12s %8s %9s\n' benchmark "glibc" "glibc fz" "musl" "musl fz" unit "musl fz/x"
    local b
    for b in "$BUILD"/musl/bench/*; do
        [[ -x $b ]] || continue
        local name=${b##*/}
        # the glibc rows: part 1's files, or a run now
        [[ -s $tmp/$name.n ]] || run_bench "$tmp/$name.n" "$BUILD/bench/$name"
        [[ -s $tmp/$name.f ]] || run_bench "$tmp/$name.f" "$FZ" -- "$BUILD/bench/$name"
        run_bench "$tmp/$name.mn" "$b"
        run_bench "$tmp/$name.mf" "$FZ" -- "$b"
        local metric value unit
        while IFS=$'\t' read -r metric value unit; do
            [[ -n $unit ]] || continue
            local gn gf mf lower=0
            gn=$(metric_of "$tmp/$name.n" "$metric")
            gf=$(metric_of "$tmp/$name.f" "$metric")
            mf=$(metric_of "$tmp/$name.mf" "$metric")
            better_when_lower "$unit" && lower=1
            printf '%-32s %12s %12s %12s %12s %8s %9s\n' "$metric" "${gn:-n/a}" "${gf:-n/a}" "$value" \
                "${mf:-failed}" "$unit" "$(speedup "$value" "${mf:-x}" $lower)"
        done < <(grep -P '^[^\t]+\t[^\t]+\t[^\t]+$' "$tmp/$name.mn")
        [[ -s $tmp/$name.mn.err ]] && sed "s/^/# $name musl native: /" "$tmp/$name.mn.err" | head -3
        [[ -s $tmp/$name.mf.err ]] && sed "s/^/# $name musl fiberize: /" "$tmp/$name.mf.err" | head -3
    done
}

# fork and waitpid, round by round: a fork child runs without the runtime
# until its first thread (preload/init.c); FIBERIZE_HOOKS=-process makes
# the parent's wait the real one, in place, which separates the child's
# fork and exit from the parent's wait on a pidfd.
forks() {
    printf '%-5s %-30s %12s %12s %10s %14s %10s %6s\n' round benchmark native fiberize speedup \
        "fz -process" speedup unit
    local round b
    for ((round = 1; round <= ${BENCH_FORK_ROUNDS:-3}; round++)); do
        for b in waitpid fork; do
            [[ -x $BUILD/bench/$b ]] || continue
            run_bench "$tmp/fk.$b.n" "$BUILD/bench/$b"
            run_bench "$tmp/fk.$b.f" "$FZ" -- "$BUILD/bench/$b"
            run_bench "$tmp/fk.$b.p" env FIBERIZE_HOOKS=-process "$FZ" -- "$BUILD/bench/$b"
            local metric value unit
            while IFS=$'\t' read -r metric value unit; do
                [[ -n $unit ]] || continue
                local f p lower=0
                f=$(metric_of "$tmp/fk.$b.f" "$metric")
                p=$(metric_of "$tmp/fk.$b.p" "$metric")
                better_when_lower "$unit" && lower=1
                printf '%-5s %-30s %12s %12s %10s %14s %10s %6s\n' "$round" "$metric" "$value" \
                    "${f:-failed}" "$(speedup "$value" "${f:-x}" $lower)" "${p:-failed}" \
                    "$(speedup "$value" "${p:-x}" $lower)" "$unit"
            done < <(grep -P '^[^\t]+\t[^\t]+\t[^\t]+$' "$tmp/fk.$b.n")
        done
    done
}

[[ -z $ONLY || $ONLY == micro ]] && micro
[[ -z $ONLY || $ONLY == http ]] && http
[[ -z $ONLY || $ONLY == idle ]] && idle_part
[[ -z $ONLY || $ONLY == glibc ]] && glibcs
[[ -z $ONLY || $ONLY == musl ]] && musl
[[ -z $ONLY || $ONLY == seed ]] && seeded
[[ -z $ONLY || $ONLY == stdio ]] && stdio_part
[[ -z $ONLY || $ONLY == fork ]] && forks
true
