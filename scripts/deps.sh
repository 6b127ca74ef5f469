#!/usr/bin/env bash
# Install what building and testing fiberize needs on Debian 12.  Run as root
# (CI does).  Idempotent: when everything is installed already it touches
# nothing, not even the package lists.
#
# REQUIRED packages must install or the script fails; OPTIONAL ones (the
# benchmarks and their Go and Tokio peers, servers for demos, analysis
# tools) are skipped with a warning when this mirror does not have them.
#
#   scripts/deps.sh [--dry-run]   --dry-run prints the apt-get commands only
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

REQUIRED=(build-essential libunwind-dev libffi-dev bats)
OPTIONAL=(gcc g++ make clang clang-format cppcheck musl-tools musl-dev wrk curl python3 procps strace
    psmisc iproute2 linux-perf redis-server memcached libmemcached-tools redis-tools apache2-utils git
    libclang-rt-14-dev mariadb-server mariadb-client sysbench
    golang-go cargo rustc librust-tokio-dev) # the last four: make bench's Go and Tokio peers (bench/peers/)

DRY_RUN=
[[ ${1:-} == --dry-run ]] && DRY_RUN=1

warn() { echo "deps: warning: $*" >&2; }
die() {
    echo "deps: error: $*" >&2
    exit 1
}

run() {
    echo "+ $*"
    [[ -n $DRY_RUN ]] || "$@"
}

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# A package apt could install: it has a candidate version in the lists.
is_available() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    [[ -n $candidate && $candidate != "(none)" ]]
}

# Prints the packages of "$@" that are not installed yet.
missing_of() {
    local p
    for p in "$@"; do
        is_installed "$p" || echo "$p"
    done
}

main() {
    local missing_required missing_optional installable=() p
    mapfile -t missing_required < <(missing_of "${REQUIRED[@]}")
    mapfile -t missing_optional < <(missing_of "${OPTIONAL[@]}")
    if [[ ${#missing_required[@]} -eq 0 && ${#missing_optional[@]} -eq 0 ]]; then
        echo "deps: all packages already installed"
        return 0
    fi
    [[ $(id -u) -eq 0 || -n $DRY_RUN ]] ||
        die "must run as root to install: ${missing_required[*]} ${missing_optional[*]}"

    run apt-get update || warn "apt-get update failed; trying the package lists already here"

    for p in "${missing_required[@]}"; do
        is_available "$p" || [[ -n $DRY_RUN ]] || die "required package $p is not available"
    done
    if [[ ${#missing_required[@]} -gt 0 ]]; then
        run apt-get install -y --no-install-recommends "${missing_required[@]}"
    fi

    for p in "${missing_optional[@]}"; do
        if is_available "$p"; then
            installable+=("$p")
        else
            warn "optional package $p is not available; skipping it"
        fi
    done
    [[ ${#installable[@]} -gt 0 ]] || return 0
    # One transaction is fastest; if it fails (a conflict, a broken mirror
    # entry), retry one by one so one bad optional package costs only itself.
    run apt-get install -y --no-install-recommends "${installable[@]}" && return 0
    for p in "${installable[@]}"; do
        run apt-get install -y --no-install-recommends "$p" ||
            warn "optional package $p failed to install; continuing"
    done
}

main
