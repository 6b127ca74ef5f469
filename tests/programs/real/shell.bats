#!/usr/bin/env bats
# Ordinary blocking programs: coreutils in pipelines, bash with subshells
# and job control, make -j2, git.  Exit codes and outputs must be the same
# natively and under fiberize.

load real_helpers

setup() {
    skip_uninstrumented_under_asan
}

@test "sleep, cat and sort in pipelines" {
    seq 1 20000 | shuf --random-source=<(yes) >"$BATS_TEST_TMPDIR/numbers"
    in_both bash -c "sleep 0.2; cat '$BATS_TEST_TMPDIR/numbers' | sort -n | uniq -c | sort -k2 -n | tail -3; sort -rn < '$BATS_TEST_TMPDIR/numbers' | head -2"
    same_in_both
    [ "$(tail -1 "$fiber_out")" = "19999" ]
}

@test "exit statuses pass through: false, exit 3, a signal" {
    in_both bash -c 'false'
    same_in_both
    in_both bash -c 'exit 3'
    same_in_both
    [ "$fiber_status" -eq 3 ]
    in_both bash -c 'kill -TERM $$'
    same_in_both
    [ "$fiber_status" -eq 143 ]
}

@test "bash: subshells, background jobs, wait, pipes, traps" {
    in_both bash -c '
        trap "echo trapped USR1" USR1
        for i in 1 2 3 4 5; do (sleep 0.$i; echo "job $i") & done
        wait
        out=$( (echo a; echo b) | tr a-z A-Z | paste -sd,)
        echo "subshell: $out"
        kill -USR1 $$
        coproc cat; echo hello >&"${COPROC[1]}"; read -r line <&"${COPROC[0]}"; echo "coproc: $line"
        kill $COPROC_PID; wait $COPROC_PID 2>/dev/null
        echo "done $?"'
    same_in_both
    grep -q "job 5" "$fiber_out"
    grep -q "trapped USR1" "$fiber_out"
}

@test "make -j2 of a small C project" {
    local src=$BATS_TEST_TMPDIR/proj
    mkdir -p "$src"
    for i in 1 2 3 4 5 6; do
        printf 'int f%d(void) { return %d; }\n' "$i" "$i" >"$src/f$i.c"
    done
    printf 'int f1(void),f2(void),f3(void),f4(void),f5(void),f6(void);\n#include <stdio.h>\nint main(void){printf("%%d\\n",f1()+f2()+f3()+f4()+f5()+f6());return 0;}\n' >"$src/main.c"
    printf 'OBJS=main.o f1.o f2.o f3.o f4.o f5.o f6.o\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%%.o: %%.c\n\t$(CC) -c -o $@ $<\nclean:\n\trm -f prog *.o\n' >"$src/Makefile"
    in_both bash -c "make -s -C '$src' clean && make -s -j2 -C '$src' && '$src/prog'"
    same_in_both
    [ "$(tail -1 "$fiber_out")" = "21" ]
}

@test "git: init, commit, branch, merge, log in a temp repo" {
    local repo=$BATS_TEST_TMPDIR/repo
    local script="
        set -e
        rm -rf '$repo'; mkdir '$repo'; cd '$repo'
        export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e
        export GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z'
        git init -q -b main .
        for i in 1 2 3; do echo \$i > f\$i; git add f\$i; git commit -qm \"c\$i\"; done
        git checkout -q -b side; echo side > s; git add s; git commit -qm side
        git checkout -q main; git merge -q --no-edit side
        git log --oneline | cat
        git gc -q
        git fsck --no-progress 2>&1 | cat
        git rev-parse HEAD"
    in_both bash -c "$script"
    same_in_both
}

@test "curl fetches from a local python server" {
    local port
    port=$(free_port)
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/blob"
    cd "$BATS_TEST_TMPDIR"
    start_bg web "$PY" -m http.server "$port" --bind 127.0.0.1
    wait_port "$port"
    in_both curl -sS --fail "http://127.0.0.1:$port/blob"
    stop_bg web
    same_in_both
    cmp "$fiber_out" "$BATS_TEST_TMPDIR/blob"
}

# ~50 MB of lines, the same on every run: awk's generator with a fixed seed.
big_lines() {
    LC_ALL=C awk 'BEGIN { srand(7); for (i = 0; i < 3000000; i++)
        printf "w%06d-%s\n", int(rand() * rand() * 200000), substr("abcdefghijklmnop", 1 + int(rand() * 8), 8) }' >"$1"
}

@test "sort of 50 MB in pipelines: plain, --parallel=2 -S 10M (temp files, threads), compressed temp files" {
    local big=$BATS_TEST_TMPDIR/big tmpd=$BATS_TEST_TMPDIR/sorttmp
    big_lines "$big"
    [ "$(stat -c %s "$big")" -eq 51000000 ]
    mkdir -p "$tmpd"
    # -S 10M makes sort spill about a dozen runs to temp files and merge
    # them; --parallel=2 sorts each run with two threads;
    # --compress-program forks a gzip per temp file from that threaded sort.
    in_both env LC_ALL=C bash -c "
        set -o pipefail
        cat '$big' | sort | uniq -c | sort -rn | head -5
        echo \"pipeline \${PIPESTATUS[*]}\"
        sort --parallel=2 -S 10M -T '$tmpd' '$big' | sha256sum
        echo \"parallel \${PIPESTATUS[*]}\"
        sort --parallel=2 -S 10M -T '$tmpd' --compress-program=gzip -u '$big' | sha256sum
        echo \"compressed \${PIPESTATUS[*]}\"
        sort -c '$big'; echo \"check \$?\"
        ls -A '$tmpd' | wc -l"
    same_in_both
    cat "$fiber_out"
    # head exits after five lines of megabytes: the last sort dies of SIGPIPE.
    grep -qx 'pipeline 0 0 0 141 0' "$fiber_out"
    grep -qx 'parallel 0 0' "$fiber_out"
    grep -qx 'compressed 0 0' "$fiber_out"
    grep -qx 'check 1' "$fiber_out"
}
