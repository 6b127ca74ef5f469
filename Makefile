# fiberize build.  `make` builds the library and the command; `make check`
# runs every test and ends with "N passed, N failed".
CC       ?= cc
CXX      ?= c++
BUILD    ?= build
OPT      ?= -O2
CFLAGS_COMMON := $(OPT) -g -Wall -Wextra -D_GNU_SOURCE $(if $(WERROR),-Werror)
# Invariant checks (runtime/assert.h) are on unless RELEASE=1: `make check`
# runs with them, `make RELEASE=1` builds a library without them.
FZ_CHECKS := $(if $(RELEASE),0,1)
# The library runs parts of itself on whatever thread pointer the carrier has
# loaded, so no stack protector (it reads %fs:0x28) and hidden visibility.
LIB_CFLAGS := $(CFLAGS_COMMON) -fPIC -fvisibility=hidden -fno-stack-protector \
              -fno-omit-frame-pointer -I. -DFZ_CHECKS=$(FZ_CHECKS) $(EXTRA_CFLAGS)
LIB_LDFLAGS := -shared -Wl,-z,now -Wl,--no-undefined $(EXTRA_LDFLAGS)
LIB_LIBS := -ldl -lpthread # libffi: dlopen'ed at the first offloaded call (offload_glibc.c)

# Two libraries from one tree: libfiberize.so for glibc programs and
# libfiberize-musl.so (musl-gcc) for musl ones.  What differs per libc lives
# in files named *_glibc.c and *_musl.c, each built into its own library
# only; every other file goes into both.
ALL_SRCS  := $(wildcard preload/*.c runtime/*.c syscalls/*.c)
GLIBC_SRCS := $(filter-out %_musl.c,$(ALL_SRCS))
MUSL_SRCS  := $(filter-out %_glibc.c,$(ALL_SRCS))
LIB_SRCS := $(GLIBC_SRCS)
LIB_ASMS := $(wildcard runtime/*.S)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_ASMS:%.S=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libfiberize.so
CMD      := $(BUILD)/bin/fiberize

# The musl build: Debian's musl-gcc (package musl-tools) wraps gcc with
# musl's headers and libc only, so the kernel's headers (linux/, asm/) are
# handed in through a directory of links.  libffi and libunwind are not
# packaged for musl: the musl library needs neither (offload_musl.c,
# unwind_musl.c).  Without musl-gcc, `make` says so and builds the rest.
# MUSL=0 leaves the musl build out (the sanitizer and clang builds: their
# flags are for the glibc library).
MUSL_CC  ?= musl-gcc
MUSL     ?= 1
HAVE_MUSL := $(if $(filter 1,$(MUSL)),$(if $(shell command -v $(MUSL_CC) 2>/dev/null),1))
MUSL_DIR := $(BUILD)/musl
MUSL_INC := $(MUSL_DIR)/include
MUSL_LIB := $(BUILD)/libfiberize-musl.so
BY_LIBC  := $(BUILD)/by-libc
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null)
MUSL_OBJS := $(MUSL_SRCS:%.c=$(MUSL_DIR)/obj/%.o) $(LIB_ASMS:%.S=$(MUSL_DIR)/obj/%.o)
MUSL_LIB_CFLAGS := $(LIB_CFLAGS) -isystem $(MUSL_INC)
MUSL_LIB_LIBS := -ldl -lpthread

PROG_C   := $(wildcard tests/programs/*.c)
PROG_CXX := $(wildcard tests/programs/*.cc)
PROG_LIB := $(wildcard tests/programs/lib/*.c)
PROGS    := $(PROG_C:tests/programs/%.c=$(BUILD)/tests/programs/%) \
            $(PROG_CXX:tests/programs/%.cc=$(BUILD)/tests/programs/%) \
            $(PROG_LIB:tests/programs/lib/%.c=$(BUILD)/tests/programs/lib%.so)
UNIT_SRCS := $(filter-out tests/unit/test_sync_musl.c,$(wildcard tests/unit/test_*.c))
UNITS    := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCHES  := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

PROG_CFLAGS := $(CFLAGS_COMMON) -pthread -Wno-unused-parameter

# The C test programs and benchmarks, built once more with musl-gcc.  A
# program that needs an API only glibc has says so on a line
# "// libc: glibc-only (why)" and is left out; C++ ones are glibc-only
# (Debian packages no libstdc++ for musl).
GLIBC_ONLY := $(shell grep -l '^// libc: glibc-only' $(PROG_C) $(PROG_LIB) $(BENCH_SRCS))
MUSL_PROG_C   := $(filter-out $(GLIBC_ONLY),$(PROG_C))
MUSL_PROG_LIB := $(filter-out $(GLIBC_ONLY),$(PROG_LIB))
MUSL_PROGS := $(MUSL_PROG_C:tests/programs/%.c=$(MUSL_DIR)/tests/programs/%) \
              $(MUSL_PROG_LIB:tests/programs/lib/%.c=$(MUSL_DIR)/tests/programs/lib%.so)
MUSL_BENCH_SRCS := $(filter-out $(GLIBC_ONLY),$(BENCH_SRCS))
MUSL_BENCHES := $(MUSL_BENCH_SRCS:bench/%.c=$(MUSL_DIR)/bench/%)
MUSL_PROG_CFLAGS := $(filter-out -fsanitize=%,$(PROG_CFLAGS)) -isystem $(MUSL_INC)

.PHONY: all check check-asan check-ubsan bench demo tests clean format format-check analyse \
        musl musl-tests
all: $(LIB) $(CMD) musl

$(BUILD)/obj/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@
$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(CC) $(LIB_LDFLAGS) -o $@ $^ $(LIB_LIBS)

ifeq ($(HAVE_MUSL),1)
musl: $(MUSL_LIB) $(BY_LIBC)/.stamp
musl-tests: $(MUSL_PROGS) $(MUSL_BENCHES) $(BUILD)/tests/unit/test_sync_musl
else ifneq ($(MUSL),1)
musl:
musl-tests:
else
musl:
	@echo "make: $(MUSL_CC) not found: libfiberize-musl.so and the musl test programs are not built (scripts/deps.sh installs musl-tools)"
musl-tests:
endif

# Links to the kernel's headers, which musl-gcc's include path leaves out.
$(MUSL_INC)/.stamp:
	@mkdir -p $(MUSL_INC)
	ln -sfn /usr/include/linux $(MUSL_INC)/linux
	ln -sfn /usr/include/$(MULTIARCH)/asm $(MUSL_INC)/asm
	ln -sfn /usr/include/asm-generic $(MUSL_INC)/asm-generic
	@touch $@

$(MUSL_DIR)/obj/%.o: %.c $(wildcard */*.h) | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_LIB_CFLAGS) -c $< -o $@
$(MUSL_DIR)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_LIB_CFLAGS) -c $< -o $@

$(MUSL_LIB): $(MUSL_OBJS)
	$(MUSL_CC) $(LIB_LDFLAGS) -o $@ $^ $(MUSL_LIB_LIBS)

# One LD_PRELOAD entry that each libc's loader reads as its own library, so
# a process of one libc can exec a program of the other under fiberize:
# glibc's ld.so expands $LIB in LD_PRELOAD (to lib/<multiarch> on Debian,
# lib64 for an upstream build, lib on some others), musl's loader takes
# the path as written.  So by-libc/$LIB/libfiberize.so is the musl library
# and by-libc/<glibc's expansion>/libfiberize.so the glibc one (relative
# links: the build directory may move).
$(BY_LIBC)/.stamp: $(MUSL_LIB) $(LIB)
	@mkdir -p '$(BY_LIBC)/$$LIB' $(BY_LIBC)/lib64 $(BY_LIBC)/lib/$(MULTIARCH)
	ln -sfn '../../libfiberize-musl.so' '$(BY_LIBC)/$$LIB/libfiberize.so'
	ln -sfn ../../libfiberize.so $(BY_LIBC)/lib64/libfiberize.so
	ln -sfn ../../libfiberize.so $(BY_LIBC)/lib/libfiberize.so
	$(if $(MULTIARCH),ln -sfn ../../../libfiberize.so $(BY_LIBC)/lib/$(MULTIARCH)/libfiberize.so)
	@touch $@

$(MUSL_DIR)/tests/programs/lib%.so: tests/programs/lib/%.c | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_PROG_CFLAGS) -fPIC -shared -o $@ $<
$(MUSL_DIR)/tests/programs/%: tests/programs/%.c $(MUSL_PROG_LIB:tests/programs/lib/%.c=$(MUSL_DIR)/tests/programs/lib%.so) | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_PROG_CFLAGS) -o $@ $< -L$(MUSL_DIR)/tests/programs -Wl,-rpath,'$$ORIGIN' $(shell sed -n 's,^// link: ,,p' $<) -ldl
$(MUSL_DIR)/bench/%: bench/%.c | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(MUSL_PROG_CFLAGS) -o $@ $<

$(CMD): scripts/fiberize.c scripts/explore.c scripts/explore.h preload/config.c preload/config.h runtime/statsview.c runtime/statsview.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -o $@ scripts/fiberize.c scripts/explore.c

# Test programs: ordinary pthread programs, built exactly as a user would.
# A statically linked one (its "// link:" line says -static) cannot take a
# sanitizer runtime: it is built without one.
prog_cflags = $(if $(shell grep -l '^// link:.*-static' $(1)),$(filter-out -fsanitize=%,$(PROG_CFLAGS)),$(PROG_CFLAGS))
$(BUILD)/tests/programs/lib%.so: tests/programs/lib/%.c
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) -fPIC -shared -o $@ $<
$(BUILD)/tests/programs/%: tests/programs/%.c $(PROG_LIB:tests/programs/lib/%.c=$(BUILD)/tests/programs/lib%.so)
	@mkdir -p $(dir $@)
	$(CC) $(call prog_cflags,$<) -o $@ $< -L$(BUILD)/tests/programs -Wl,-rpath,'$$ORIGIN' $(shell sed -n 's,^// link: ,,p' $<) -ldl
$(BUILD)/tests/programs/%: tests/programs/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(PROG_CFLAGS) -std=c++17 -o $@ $< $(shell sed -n 's,^// link: ,,p' $<)

# The config test includes preload/config.c itself.
$(BUILD)/tests/unit/test_config: tests/unit/test_config.c preload/config.c preload/config.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -I. -o $@ $<

# The real-symbol test includes syscalls/real.c itself (its stubs are
# assembly inside that file).
$(BUILD)/tests/unit/test_real: tests/unit/test_real.c syscalls/real.c syscalls/real_glibc.c syscalls/real.h runtime/sys.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -I. -o $@ $< syscalls/real_glibc.c -ldl

# The protocol test runs the whole runtime, without preload/ or syscalls/.
RUNTIME_SRCS := $(filter-out %_musl.c,$(wildcard runtime/*.c)) $(wildcard runtime/*.S)
$(BUILD)/tests/unit/test_protocols: tests/unit/test_protocols.c $(RUNTIME_SRCS) $(wildcard runtime/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -I. -DFZ_CHECKS=1 -fno-stack-protector -fno-omit-frame-pointer \
	      -pthread -o $@ $< $(RUNTIME_SRCS) $(EXTRA_CFLAGS) $(EXTRA_LDFLAGS) -ldl

# Unit tests link the runtime file they test (tests/unit/test_X.c <-> runtime/X.c).
$(BUILD)/tests/unit/test_%: tests/unit/test_%.c runtime/%.c runtime/assert.c $(wildcard runtime/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -I. -DFZ_CHECKS=1 -pthread -o $@ $< runtime/$*.c runtime/assert.c

# The sync layer on musl's object encodings (syscalls/sync_layout_musl.h),
# over a stand-in runtime inside the test: a musl program.
SYNC_SRCS := syscalls/mutex.c syscalls/cond.c syscalls/rwlock.c syscalls/sem.c syscalls/barrier.c \
             syscalls/sync_check_musl.c
$(BUILD)/tests/unit/test_sync_musl: tests/unit/test_sync_musl.c $(SYNC_SRCS) $(wildcard */*.h) | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_CC) $(CFLAGS_COMMON) -I. -isystem $(MUSL_INC) -DFZ_CHECKS=1 -o $@ $< $(SYNC_SRCS) -ldl

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) -o $@ $<

tests: all $(PROGS) $(UNITS) musl-tests

check: tests
	@BUILD=$(BUILD) scripts/check.sh

# The program links libasan but libfiberize.so is preloaded ahead of it, so
# ASan's link-order check is off; everything else (leaks included) is on.
check-asan: export ASAN_OPTIONS = verify_asan_link_order=0:detect_leaks=1:abort_on_error=0
check-asan: export FZ_ASAN = 1
check-asan:
	$(MAKE) BUILD=build-asan MUSL=0 EXTRA_CFLAGS="-fsanitize=address -DFZ_ASAN" \
	        EXTRA_LDFLAGS="-fsanitize=address" PROG_CFLAGS="$(PROG_CFLAGS) -fsanitize=address" check

# Undefined behaviour anywhere in the library or the test programs ends the
# run with a report (halt_on_error), so a test that hits one fails.
check-ubsan: export UBSAN_OPTIONS = halt_on_error=1:print_stacktrace=1
check-ubsan: export FZ_UBSAN = 1
check-ubsan:
	$(MAKE) BUILD=build-ubsan MUSL=0 EXTRA_CFLAGS="-fsanitize=undefined -fno-sanitize-recover=undefined" \
	        EXTRA_LDFLAGS="-fsanitize=undefined" \
	        PROG_CFLAGS="$(PROG_CFLAGS) -fsanitize=undefined -fno-sanitize-recover=undefined" check

bench: all $(PROGS) $(BENCHES) musl-tests
	@BUILD=$(BUILD) scripts/bench.sh

demo: all $(PROGS)
	@BUILD=$(BUILD) scripts/demo.sh

FORMAT_FILES = $(wildcard preload/*.[ch] runtime/*.[ch] syscalls/*.[ch] tests/unit/*.[ch] \
                 tests/programs/*.c tests/programs/*.cc tests/programs/lib/*.c scripts/*.c bench/*.c)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

# Static analysis, formatting, the clang build and the layer rule
# (scripts/analyse.sh); CI runs it before the tests.
analyse: all
	@BUILD=$(BUILD) scripts/analyse.sh

clean:
	rm -rf $(BUILD) build-asan build-ubsan build-clang
