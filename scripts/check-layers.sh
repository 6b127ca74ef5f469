#!/usr/bin/env bash
# Layers import downward only: preload/ (constructor, settings) above
# syscalls/ (the interposers, the real-symbol table) above runtime/.
#   - runtime/ includes no syscalls/ or preload/ header, and never calls an
#     interposed function or anything else defined above it;
#   - syscalls/ includes no preload/ header and uses nothing defined there.
# The compiler cannot see the call rule (an interposed pthread_getattr_np
# is an ordinary libc name to it), so this reads the objects: a layer's
# undefined symbols must contain no name defined in the objects above it,
# and runtime/'s none that libfiberize.so exports (its interposers).
#
#   scripts/check-layers.sh [BUILD [LIBC]]   (after `make`; BUILD defaults
#   to build, LIBC to glibc; musl reads libfiberize-musl.so and its objects)
# Prints each violation and exits 1 if there is one.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
BUILD=${1:-${BUILD:-build}}
LIBC=${2:-glibc}
case $LIBC in
glibc) lib=$BUILD/libfiberize.so objs=$BUILD/obj other=musl ;;
musl) lib=$BUILD/libfiberize-musl.so objs=$BUILD/musl/obj other=glibc ;;
*)
    echo "check-layers: LIBC is glibc or musl, not '$LIBC'"
    exit 2
    ;;
esac

if [[ ! -f $lib ]] || ! compgen -G "$objs/runtime/*.o" >/dev/null; then
    echo "check-layers: $lib or $objs/runtime/*.o missing (run make first)"
    exit 2
fi

bad=0
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT

# Objects of the current sources only (a removed file's object may linger),
# and of this libc's (the other's *_$other.c are not built into it).
objects_of() {
    local dir=$1 src
    for src in "$dir"/*.c "$dir"/*.S; do
        [[ -f $src && $src != *_"$other".c ]] || continue
        echo "$objs/${src%.*}.o"
    done
}

# defined_in DIR...: every global name the objects of those layers define.
defined_in() {
    local dir
    for dir in "$@"; do
        objects_of "$dir" | xargs nm --defined-only | awk 'NF >= 3 && $2 ~ /[A-Z]/ { print $3 }'
    done
}

# check LAYER NAMES-FILE UPPER...: includes and symbols of LAYER.
check() {
    local layer=$1 above=$2 upper_re o sym
    shift 2
    upper_re=$(
        IFS='|'
        echo "$*"
    )
    if grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"(\.\./)?($upper_re)/" \
        "$layer"/*.[ch] "$layer"/*.S 2>/dev/null; then
        echo "check-layers: $layer/ includes a header from a layer above it (lines above)"
        bad=1
    fi
    while read -r o; do
        nm --undefined-only "$o" | awk '{ print $NF }' | sed 's/@.*//' | sort -u >"$work/undef"
        while read -r sym; do
            echo "check-layers: ${o#"$objs"/} uses $sym, which is defined above $layer/"
            bad=1
        done < <(comm -12 "$work/undef" "$above")
    done < <(objects_of "$layer")
}

{
    nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }'
    defined_in syscalls preload
} | sed 's/@.*//' | sort -u >"$work/above_runtime"
[[ -s $work/above_runtime ]] || { echo "check-layers: found no symbols in $lib"; exit 2; }
defined_in preload | sort -u >"$work/above_syscalls"

check runtime "$work/above_runtime" syscalls preload
check syscalls "$work/above_syscalls" preload

if [[ $bad -eq 0 ]]; then
    echo "check-layers: $LIBC: runtime/ uses nothing from syscalls/ or preload/ ($(wc -l <"$work/above_runtime") names)," \
        "syscalls/ nothing from preload/ ($(wc -l <"$work/above_syscalls") names)"
fi
exit "$bad"
