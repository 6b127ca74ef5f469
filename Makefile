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
LIB_LIBS := -ldl -lpthread -lffi

LIB_SRCS := $(filter-out %_musl.c,$(wildcard preload/*.c runtime/*.c syscalls/*.c))
LIB_ASMS := $(wildcard runtime/*.S)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_ASMS:%.S=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libfiberize.so
CMD      := $(BUILD)/bin/fiberize

PROG_C   := $(wildcard tests/programs/*.c)
PROG_CXX := $(wildcard tests/programs/*.cc)
PROG_LIB := $(wildcard tests/programs/lib/*.c)
PROGS    := $(PROG_C:tests/programs/%.c=$(BUILD)/tests/programs/%) \
            $(PROG_CXX:tests/programs/%.cc=$(BUILD)/tests/programs/%) \
            $(PROG_LIB:tests/programs/lib/%.c=$(BUILD)/tests/programs/lib%.so)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNITS    := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCHES  := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)

PROG_CFLAGS := $(CFLAGS_COMMON) -pthread -Wno-unused-parameter

.PHONY: all check check-asan check-ubsan bench demo tests clean format format-check analyse
all: $(LIB) $(CMD)

$(BUILD)/obj/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@
$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(CC) $(LIB_LDFLAGS) -o $@ $^ $(LIB_LIBS)

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
$(BUILD)/tests/unit/test_real: tests/unit/test_real.c syscalls/real.c syscalls/real.h runtime/sys.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -I. -o $@ $< -ldl

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

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(PROG_CFLAGS) -o $@ $<

tests: all $(PROGS) $(UNITS)

check: tests
	@BUILD=$(BUILD) scripts/check.sh

# The program links libasan but libfiberize.so is preloaded ahead of it, so
# ASan's link-order check is off; everything else (leaks included) is on.
check-asan: export ASAN_OPTIONS = verify_asan_link_order=0:detect_leaks=1:abort_on_error=0
check-asan: export FZ_ASAN = 1
check-asan:
	$(MAKE) BUILD=build-asan EXTRA_CFLAGS="-fsanitize=address -DFZ_ASAN" \
	        EXTRA_LDFLAGS="-fsanitize=address" PROG_CFLAGS="$(PROG_CFLAGS) -fsanitize=address" check

# Undefined behaviour anywhere in the library or the test programs ends the
# run with a report (halt_on_error), so a test that hits one fails.
check-ubsan: export UBSAN_OPTIONS = halt_on_error=1:print_stacktrace=1
check-ubsan: export FZ_UBSAN = 1
check-ubsan:
	$(MAKE) BUILD=build-ubsan EXTRA_CFLAGS="-fsanitize=undefined -fno-sanitize-recover=undefined" \
	        EXTRA_LDFLAGS="-fsanitize=undefined" \
	        PROG_CFLAGS="$(PROG_CFLAGS) -fsanitize=undefined -fno-sanitize-recover=undefined" check

bench: all $(PROGS) $(BENCHES)
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
