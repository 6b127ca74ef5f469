#!/usr/bin/env bats
# The fiberize command: options, LD_PRELOAD, exit statuses, and how a program
# under the library fares with malformed FIBERIZE_* variables.  The commands
# run here (sh, env, true, cat) run with the real library preloaded, so they
# also check that it leaves ordinary single-threaded programs working.

load helpers

setup() {
    LIB=$FIBERIZE_BUILD/libfiberize.so
    # The runner's own settings must not leak into what is checked here.
    unset LD_PRELOAD FIBERIZE_WORKERS FIBERIZE_STATS FIBERIZE_STACK_SIZE FIBERIZE_HOOKS \
        FIBERIZE_POOL_MAX FIBERIZE_HANDOFF_US FIBERIZE_DUMP_SIGNAL FIBERIZE_DISABLE
}

# expect_env VAR=VALUE [FIBERIZE-OPTIONS...]: the options give the program
# exactly that variable.
expect_env() {
    local want=$1
    shift
    run --separate-stderr "$FZ" "$@" -- env
    if [[ $status -ne 0 ]] || ! grep -qxF -- "$want" <<<"$output"; then
        echo "fiberize $* -- env: status $status, no line '$want' in:"
        echo "$output"
        echo "stderr: $stderr"
        return 1
    fi
}

# expect_usage_error FIBERIZE-ARGS...: status 2, a message and the hint.
expect_usage_error() {
    run --separate-stderr "$FZ" "$@"
    if [[ $status -ne 2 || $stderr != fiberize:* || $stderr != *"Try 'fiberize --help'"* ]]; then
        echo "fiberize $*: status $status, stderr: $stderr"
        return 1
    fi
}

# expect_warned VAR VALUE: the program still runs and succeeds, and stderr is
# exactly one line from the library naming the variable.
expect_warned() {
    local var=$1 value=$2
    run --separate-stderr env "$var=$value" "$FZ" -- true
    if [[ $status -ne 0 || ${#stderr_lines[@]} -ne 1 || ${stderr_lines[0]} != *"$var=\"$value\""* ]]; then
        echo "$var=$value: status $status, stderr (${#stderr_lines[@]} lines):"
        echo "$stderr"
        return 1
    fi
}

@test "--help prints the usage on stdout and exits 0" {
    run --separate-stderr "$FZ" --help
    [ "$status" -eq 0 ]
    [[ $output == "Usage: fiberize"* ]]
    [[ $output == *"--workers"* && $output == *"--hooks"* ]]
    [ -z "$stderr" ]
}

@test "-h is --help" {
    run "$FZ" -h
    [ "$status" -eq 0 ]
    [[ $output == "Usage: fiberize"* ]]
}

@test "--version prints the version and exits 0" {
    run --separate-stderr "$FZ" --version
    [ "$status" -eq 0 ]
    [ "$output" = "fiberize 0.1.0" ]
}

@test "LD_PRELOAD holds the absolute library path" {
    run --separate-stderr "$FZ" -- sh -c 'printf %s "$LD_PRELOAD"'
    [ "$status" -eq 0 ]
    [ "$output" = "$LIB" ]
}

@test "LD_PRELOAD keeps the previous value after the library" {
    # ld.so complains on stderr about the missing library and carries on.
    run --separate-stderr env LD_PRELOAD=/nonexistent/other.so "$FZ" -- sh -c 'printf %s "$LD_PRELOAD"'
    [ "$status" -eq 0 ]
    [ "$output" = "$LIB:/nonexistent/other.so" ]
}

@test "the library is never in LD_PRELOAD twice" {
    run --separate-stderr env LD_PRELOAD="$LIB" "$FZ" -- sh -c 'printf %s "$LD_PRELOAD"'
    [ "$output" = "$LIB" ]
    run --separate-stderr env LD_PRELOAD="/nonexistent/a.so:$LIB" "$FZ" -- sh -c 'printf %s "$LD_PRELOAD"'
    [ "$output" = "$LIB:/nonexistent/a.so" ]
}

@test "COMMAND is searched in PATH and '--' is optional" {
    run --separate-stderr "$FZ" printf '%s,' a 'b c'
    [ "$status" -eq 0 ]
    [ "$output" = "a,b c," ]
}

@test "options after COMMAND belong to COMMAND" {
    run --separate-stderr "$FZ" echo --workers 0 --bogus
    [ "$status" -eq 0 ]
    [ "$output" = "--workers 0 --bogus" ]
}

@test "stdin and stdout pass through" {
    run --separate-stderr bash -c 'printf "one\ntwo\n" | "$1" cat' _ "$FZ"
    [ "$status" -eq 0 ]
    [ "$output" = $'one\ntwo' ]
}

@test "--workers sets FIBERIZE_WORKERS" {
    expect_env FIBERIZE_WORKERS=3 --workers 3
    expect_env FIBERIZE_WORKERS=1024 --workers=1024
}

@test "--stats sets FIBERIZE_STATS=1" {
    expect_env FIBERIZE_STATS=1 --stats
}

@test "--stack-size sets FIBERIZE_STACK_SIZE" {
    expect_env FIBERIZE_STACK_SIZE=64K --stack-size 64K
    expect_env FIBERIZE_STACK_SIZE=8m --stack-size=8m
    expect_env FIBERIZE_STACK_SIZE=1G --stack-size 1G
}

@test "--file-io sets FIBERIZE_FILE_IO" {
    expect_env FIBERIZE_FILE_IO=pool --file-io pool
    expect_env FIBERIZE_FILE_IO=inline --file-io=inline
    expect_usage_error --file-io threads -- true
}

@test "--pool-max sets FIBERIZE_POOL_MAX" {
    expect_env FIBERIZE_POOL_MAX=8 --pool-max 8
    expect_env FIBERIZE_POOL_MAX=65536 --pool-max=65536
}

@test "--hooks sets FIBERIZE_HOOKS" {
    expect_env FIBERIZE_HOOKS=-io,-pool --hooks -io,-pool
    expect_env FIBERIZE_HOOKS=thread,time --hooks=thread,time
    expect_env FIBERIZE_HOOKS=none --hooks none
}

@test "the last of a repeated option wins" {
    expect_env FIBERIZE_WORKERS=2 --workers 5 --workers=2
}

@test "bad option values exit 2" {
    expect_usage_error --workers 0 -- true
    expect_usage_error --workers 1025 -- true
    expect_usage_error --workers abc -- true
    expect_usage_error --workers= -- true
    expect_usage_error --stack-size 12Q -- true
    expect_usage_error --stack-size 8K -- true
    expect_usage_error --stack-size=2G -- true
    expect_usage_error --pool-max 0 -- true
    expect_usage_error --pool-max 65537 -- true
    expect_usage_error --hooks bogus -- true
    expect_usage_error --hooks thread, -- true
    [[ $stderr == *"--hooks"* ]]
}

@test "unknown options, missing values and values on flags exit 2" {
    expect_usage_error --bogus -- true
    expect_usage_error -x true
    expect_usage_error --work 2 -- true
    expect_usage_error --stats=1 -- true
    expect_usage_error --workers
}

@test "a missing COMMAND exits 2" {
    expect_usage_error
    expect_usage_error --workers 2 --
}

@test "a COMMAND that is not found exits 127" {
    run -127 --separate-stderr "$FZ" -- no-such-command-for-fiberize
    [ "$stderr" = "fiberize: 'no-such-command-for-fiberize': No such file or directory" ]
    run -127 --separate-stderr "$FZ" -- "$BATS_TEST_TMPDIR/missing"
}

@test "a COMMAND that cannot be executed exits 126" {
    local file=$BATS_TEST_TMPDIR/not-executable
    printf '#!/bin/sh\nexit 0\n' >"$file"
    chmod 644 "$file"
    run -126 --separate-stderr "$FZ" -- "$file"
    [[ $stderr == "fiberize: '$file': "* ]]
    run -126 --separate-stderr "$FZ" -- "$BATS_TEST_TMPDIR"
}

@test "COMMAND's exit status passes through" {
    run "$FZ" -- sh -c 'exit 42'
    [ "$status" -eq 42 ]
    run "$FZ" -- false
    [ "$status" -eq 1 ]
}

@test "death by a signal passes through as it does natively" {
    run sh -c 'kill -TERM $$'
    local native=$status
    run "$FZ" -- sh -c 'kill -TERM $$'
    [ "$native" -eq 143 ]
    [ "$status" -eq "$native" ]
}

@test "malformed FIBERIZE_WORKERS: one warning, the program still runs" {
    expect_warned FIBERIZE_WORKERS abc
}

@test "malformed FIBERIZE_STACK_SIZE: one warning, the program still runs" {
    expect_warned FIBERIZE_STACK_SIZE 12Q
}

@test "malformed FIBERIZE_STATS: one warning, the program still runs" {
    expect_warned FIBERIZE_STATS maybe
}

@test "malformed FIBERIZE_HOOKS and FIBERIZE_DUMP_SIGNAL: one warning each" {
    expect_warned FIBERIZE_HOOKS thread,bogus
    expect_warned FIBERIZE_DUMP_SIGNAL NOPE
}

@test "an empty FIBERIZE_* value counts as unset" {
    run --separate-stderr env FIBERIZE_WORKERS= FIBERIZE_STATS= "$FZ" -- true
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
}

# Programs no library of ours can be loaded into run natively, with one
# line on stderr saying why (none with --quiet): the same stdout and status
# as a native run.
# libc_case NAME EXPECTED-LINE CMD...: CMD's stdout/status natively and
# fiberized agree, and fiberize's stderr is the expected line.  FZ_CMD
# (default $FZ) is the fiberize under test.
libc_case() {
    local name=$1 line=$2 fz=${FZ_CMD:-$FZ}
    shift 2
    run --separate-stderr "$@" a b
    local want_status=$status want_out=$output want_err=$stderr
    run --separate-stderr "$fz" -- "$@" a b
    echo "$name: status $status (native $want_status), stdout '$output', stderr '$stderr'"
    [[ $status == "$want_status" && $output == "$want_out" ]]
    [[ $stderr == "fiberize: $line${want_err:+$'\n'$want_err}" ]]
    run --separate-stderr "$fz" --quiet -- "$@" a b
    [[ $status == "$want_status" && $output == "$want_out" && $stderr == "$want_err" ]]
}

# A musl program that prints its LD_PRELOAD, its arguments, and exits 7.
make_musl_program() {
    command -v musl-gcc >/dev/null || skip "musl-gcc not installed (musl-tools)"
    printf '#include <stdio.h>\n#include <stdlib.h>\nint main(int c, char **v) { printf("%%s %%d %%s\\n", getenv("LD_PRELOAD"), c, v[c - 1]); return 7; }\n' \
        >"$BATS_TEST_TMPDIR/m.c"
    musl-gcc -o "$BATS_TEST_TMPDIR/musl_prog" "$BATS_TEST_TMPDIR/m.c"
}

# A fiberize installed by itself in $BATS_TEST_TMPDIR/fz (bin/fiberize with
# the glibc library beside it), so which library is chosen can be seen
# whether or not the build made libfiberize-musl.so.  With "musl", a stand-in
# musl library that loads and does nothing sits beside it too.
make_layout() {
    local dir=$BATS_TEST_TMPDIR/fz
    mkdir -p "$dir/bin"
    cp "$FZ" "$dir/bin/fiberize"
    ln -sf "$LIB" "$dir/libfiberize.so"
    if [[ ${1:-} == musl* ]]; then
        printf 'int fz_stand_in;\n' >"$BATS_TEST_TMPDIR/stand_in.c"
        musl-gcc -shared -fPIC -o "$dir/libfiberize-musl.so" "$BATS_TEST_TMPDIR/stand_in.c"
    fi
    if [[ ${1:-} == musl+by-libc ]]; then # as make links them
        mkdir -p "$dir/by-libc/\$LIB" "$dir/by-libc/lib64" "$dir/by-libc/lib/$(gcc -print-multiarch)"
        ln -s ../../libfiberize-musl.so "$dir/by-libc/\$LIB/libfiberize.so"
        ln -s ../../libfiberize.so "$dir/by-libc/lib64/libfiberize.so"
        ln -s ../../../libfiberize.so "$dir/by-libc/lib/$(gcc -print-multiarch)/libfiberize.so"
    fi
    FZ_CMD=$dir/bin/fiberize
}

@test "with make's by-libc links a musl program gets the entry both loaders read as their own" {
    make_musl_program
    make_layout musl+by-libc
    local dir=$BATS_TEST_TMPDIR/fz
    run --separate-stderr "$FZ_CMD" -- "$BATS_TEST_TMPDIR/musl_prog" a b
    [[ $status == 7 && $output == "$dir/by-libc/\$LIB/libfiberize.so 3 b" && -z $stderr ]]
    # the glibc /bin/sh it starts loads libfiberize.so (without the links:
    # musl's library, and sh failed to start with status 127)
    printf '#include <stdlib.h>\nint main(void) { return system("printf \\"sh: %%s\\" \\"$LD_PRELOAD\\"; exit 3") >> 8; }\n' \
        >"$BATS_TEST_TMPDIR/sys.c"
    musl-gcc -o "$BATS_TEST_TMPDIR/musl_system" "$BATS_TEST_TMPDIR/sys.c"
    run --separate-stderr "$FZ_CMD" -- "$BATS_TEST_TMPDIR/musl_system"
    [[ $status == 3 && $output == "sh: $dir/by-libc/\$LIB/libfiberize.so" && -z $stderr ]]
    # a glibc env running a musl program: both read it
    printf '#!/usr/bin/env musl_prog\n' >"$BATS_TEST_TMPDIR/via_env"
    chmod +x "$BATS_TEST_TMPDIR/via_env"
    run --separate-stderr env PATH="$BATS_TEST_TMPDIR:$PATH" "$FZ_CMD" -- "$BATS_TEST_TMPDIR/via_env" a b
    [[ $status == 7 && $output == "$dir/by-libc/\$LIB/libfiberize.so 4 b" && -z $stderr ]]
}

@test "a musl program gets libfiberize-musl.so preloaded, a glibc one libfiberize.so" {
    make_musl_program
    make_layout musl
    local dir=$BATS_TEST_TMPDIR/fz
    run --separate-stderr "$FZ_CMD" -- "$BATS_TEST_TMPDIR/musl_prog" a b
    [[ $status == 7 && $output == "$dir/libfiberize-musl.so 3 b" && -z $stderr ]]
    run --separate-stderr "$FZ_CMD" -- sh -c 'printf %s "$LD_PRELOAD"'
    [[ $status == 0 && $output == "$dir/libfiberize.so" && -z $stderr ]]
}

@test "#! scripts are followed to their interpreter: a musl one, directly and through env" {
    make_musl_program
    make_layout musl
    local dir=$BATS_TEST_TMPDIR/fz
    printf '#!%s\n' "$BATS_TEST_TMPDIR/musl_prog" >"$BATS_TEST_TMPDIR/direct"
    printf '#!/usr/bin/env musl_prog\n' >"$BATS_TEST_TMPDIR/via_env"
    chmod +x "$BATS_TEST_TMPDIR/direct" "$BATS_TEST_TMPDIR/via_env"
    run --separate-stderr "$FZ_CMD" -- "$BATS_TEST_TMPDIR/direct" a b
    [[ $status == 7 && $output == "$dir/libfiberize-musl.so 4 b" && -z $stderr ]]
    # /usr/bin/env is a glibc program: it would refuse the musl library,
    # the musl program the glibc one
    PATH=$BATS_TEST_TMPDIR:$PATH libc_case via_env \
        "'$BATS_TEST_TMPDIR/via_env' starts a program of one libc through env of the other (glibc and musl): no one library can be preloaded into both: running it natively" \
        "$BATS_TEST_TMPDIR/via_env"
    # a glibc interpreter: the glibc library
    printf '#!/bin/sh\necho "$LD_PRELOAD"\n' >"$BATS_TEST_TMPDIR/sh_script"
    chmod +x "$BATS_TEST_TMPDIR/sh_script"
    run --separate-stderr "$FZ_CMD" -- "$BATS_TEST_TMPDIR/sh_script"
    [[ $status == 0 && $output == "$dir/libfiberize.so" && -z $stderr ]]
}

@test "a musl program runs natively, with one line saying why, when libfiberize-musl.so is missing" {
    make_musl_program
    make_layout
    libc_case musl "'$BATS_TEST_TMPDIR/musl_prog' runs on musl libc and $BATS_TEST_TMPDIR/fz/libfiberize-musl.so is missing (make builds it when musl-gcc is installed): running it natively" \
        "$BATS_TEST_TMPDIR/musl_prog"
}

@test "a musl program runs fiberized on the built libfiberize-musl.so" {
    make_musl_program
    [[ -f $FIBERIZE_BUILD/libfiberize-musl.so ]] || skip "libfiberize-musl.so is not built"
    local want=$FIBERIZE_BUILD/libfiberize-musl.so
    [[ -e $FIBERIZE_BUILD/by-libc/\$LIB/libfiberize.so ]] && want=$FIBERIZE_BUILD/by-libc/\$LIB/libfiberize.so
    run --separate-stderr "$FZ" -- "$BATS_TEST_TMPDIR/musl_prog" a b
    echo "status $status, stdout '$output', stderr '$stderr'"
    [[ $status == 7 && $output == "$want 3 b" && -z $stderr ]]
    # and the runtime is on in it
    run --separate-stderr "$FZ" --stats -- "$BATS_TEST_TMPDIR/musl_prog" a b
    [[ $status == 7 && $stderr == *"fiberize stats: carriers="* ]]
}

@test "a static program runs natively, with one line saying why" {
    printf '#include <stdio.h>\nint main(int c, char **v) { printf("%%d %%s\\n", c, v[c - 1]); return 7; }\n' \
        >"$BATS_TEST_TMPDIR/s.c"
    gcc -static -o "$BATS_TEST_TMPDIR/static_prog" "$BATS_TEST_TMPDIR/s.c" 2>/dev/null ||
        skip "no static libc (libc6-dev's libc.a)"
    libc_case static "'$BATS_TEST_TMPDIR/static_prog' is statically linked: nothing can be preloaded into it: running it natively" \
        "$BATS_TEST_TMPDIR/static_prog"
}

@test "missing and non-ELF commands fare as under env (the same execvp)" {
    run -127 "$FZ" -- "$BATS_TEST_TMPDIR/none"
    printf 'echo no interpreter line; exit 5\n' >"$BATS_TEST_TMPDIR/text"
    chmod +x "$BATS_TEST_TMPDIR/text"
    run -5 env "$BATS_TEST_TMPDIR/text"
    local native=$output
    run -5 "$FZ" -- "$BATS_TEST_TMPDIR/text"
    [[ $output == "$native" ]]
    chmod -x "$BATS_TEST_TMPDIR/text"
    run -126 "$FZ" -- "$BATS_TEST_TMPDIR/text"
}

@test "a dynamic loader run as a command (ld.so PROGRAM, as run-with does) still gets the library" {
    local ldso=/lib64/ld-linux-x86-64.so.2
    [[ -x $ldso ]] || skip "no $ldso"
    run --separate-stderr "$FZ" -- "$ldso" /bin/sh -c 'echo "$LD_PRELOAD"'
    [[ $status == 0 && $output == "$LIB" && -z $stderr ]]
}
