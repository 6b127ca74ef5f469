#!/usr/bin/env bash
# make demo: the bundled thread-per-connection HTTP server
# (tests/programs/http_server.c) loaded natively and under fiberize with the
# same wrk run, side by side.
#
#   DEMO_CONNECTIONS (default 1000), DEMO_SECONDS (default 10)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
BUILD=${BUILD:-build}
FZ=$BUILD/bin/fiberize
SERVER=$BUILD/tests/programs/http_server
CONNS=${DEMO_CONNECTIONS:-1000}
SECS=${DEMO_SECONDS:-10}

if ! command -v wrk >/dev/null; then
    echo "demo: wrk is not installed; run: sudo scripts/deps.sh" >&2
    exit 1
fi
[[ -x $SERVER && -x $FZ ]] || { echo "demo: build first (make demo builds everything)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $((CONNS + 100)) ]]; then
    echo "demo: $CONNS connections need $((CONNS + 100)) fds; the limit is $(ulimit -n)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_one LABEL CMD...: start the server, load it, fill $tmp/LABEL.*
run_one() {
    local label=$1
    shift
    "$@" "$SERVER" 0 >"$tmp/$label.out" 2>"$tmp/$label.err" &
    local pid=$! port= i
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's/^listening on //p' "$tmp/$label.out")
        [[ -n $port ]] && break
        sleep 0.05
    done
    if [[ -z $port ]]; then
        echo "demo: the $label server did not start:" >&2
        cat "$tmp/$label.err" >&2
        kill "$pid" 2>/dev/null
        return 1
    fi
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$port/" >"$tmp/$label.wrk" 2>&1 &
    local wrk_pid=$!
    sleep $((SECS / 2))
    awk '/^Threads:/ { print $2 }' "/proc/$pid/status" >"$tmp/$label.threads"
    wait "$wrk_pid"
    awk '/^VmHWM:/ { printf "%.1f MB\n", $2 / 1024 }' "/proc/$pid/status" >"$tmp/$label.rss"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

field() { # field LABEL WHAT
    case $2 in
    rps) awk '/^Requests\/sec:/ { print $2 }' "$tmp/$1.wrk" ;;
    p99) awk '$1 == "99%" { print $2 }' "$tmp/$1.wrk" ;;
    errors) awk '/Socket errors|Non-2xx/ { $1 = $1; print }' "$tmp/$1.wrk" | paste -sd';' ;;
    threads) cat "$tmp/$1.threads" ;;
    rss) cat "$tmp/$1.rss" ;;
    esac
}

echo "demo: thread-per-connection HTTP server, wrk -t2 -c$CONNS -d${SECS}s, natively then under fiberize"
run_one native env || exit 1
run_one fiberize "$FZ" -- || exit 1

n_rps=$(field native rps) f_rps=$(field fiberize rps)
printf '\n%-22s %16s %16s\n' "" native fiberize
printf '%-22s %16s %16s\n' "requests/s" "$n_rps" "$f_rps"
printf '%-22s %16s %16s\n' "p99 latency" "$(field native p99)" "$(field fiberize p99)"
printf '%-22s %16s %16s\n' "OS threads (under load)" "$(field native threads)" "$(field fiberize threads)"
printf '%-22s %16s %16s\n' "connections = threads" "$CONNS" "$CONNS fibers"
printf '%-22s %16s %16s\n' "peak RSS" "$(field native rss)" "$(field fiberize rss)"
for label in native fiberize; do
    e=$(field $label errors)
    [[ -n $e ]] && echo "$label: wrk reported: $e"
done
awk -v n="$n_rps" -v f="$f_rps" 'BEGIN { if (n > 0) printf "\nthroughput ratio fiberize/native: %.2fx\n", f / n }'
