#!/usr/bin/env bash
# Layers import downward only: runtime/ never includes a syscalls/ or
# preload/ header and never calls an interposed function or anything else
# defined above it.  The compiler cannot see the second rule (an
# interposed pthread_getattr_np is an ordinary libc name to it), so this
# reads the objects: the undefined symbols of runtime/*.o must contain no
# name that libfiberize.so exports (its interposers) and no name defined in
# syscalls/*.o or preload/*.o.
#
#   scripts/check-layers.sh [BUILD]   (after `make`; BUILD defaults to build)
# Prints each violation and exits 1 if there is one.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
BUILD=${1:-${BUILD:-build}}
lib=$BUILD/libfiberize.so
objs=$BUILD/obj

if [[ ! -f $lib ]] || ! compgen -G "$objs/runtime/*.o" >/dev/null; then
    echo "check-layers: $lib or $objs/runtime/*.o missing (run make first)"
    exit 2
fi

bad=0
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT

# 1. includes: runtime/ sources name only runtime/ headers among the project's.
if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(syscalls|preload)/' runtime/*.[chS]; then
    echo "check-layers: runtime/ includes a header from a layer above it (lines above)"
    bad=1
fi

# 2. symbols: everything the layers above define, and every exported name.
{
    nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }'
    nm --defined-only "$objs"/syscalls/*.o "$objs"/preload/*.o | awk 'NF >= 3 && $2 ~ /[A-Z]/ { print $3 }'
} | sed 's/@.*//' | sort -u >"$work/above"
[[ -s $work/above ]] || { echo "check-layers: found no exported symbols in $lib"; exit 2; }

for o in "$objs"/runtime/*.o; do
    nm --undefined-only "$o" | awk '{ print $NF }' | sed 's/@.*//' | sort -u >"$work/undef"
    while read -r sym; do
        echo "check-layers: ${o#"$objs"/} uses $sym, which is defined above the runtime"
        bad=1
    done < <(comm -12 "$work/undef" "$work/above")
done

if [[ $bad -eq 0 ]]; then
    echo "check-layers: runtime/ uses nothing from syscalls/ or preload/ ($(wc -l <"$work/above") names checked)"
fi
exit "$bad"
