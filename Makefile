# cgprof: a plain Makefile. Our flags stay apart from the user's CFLAGS;
# every library comes through pkg-config; -MMD keeps header dependencies.
#   make            build ./cgprof
#   make check      install missing Debian packages, build, run every test
#   make demo       profile examples/python/demo.py into demo.svg
#   make asan       build with AddressSanitizer + UBSan into build-asan/
#   make asan-check the unit and integration tests against that build
#   make valgrind-check  the unit tests under valgrind memcheck
#   make bench      benchmarks under bench/ (never part of check)
#   make fuzz       libFuzzer harnesses (clang) into build-fuzz/, each run
#                   CGPROF_FUZZ_SECONDS (default 20) over tests/fuzz/corpus

PREFIX  ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
# check's builds run one compiler per CPU
JOBS    ?= $(shell nproc 2>/dev/null || echo 1)

PKGS    := libunwind-ptrace libunwind-generic libelf openssl jansson libcurl zlib ncursesw
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wformat=2 -Wvla
ifeq ($(WERROR),1)
WARN += -Werror
endif
ifneq ($(SANITIZER),)
SAN_FLAGS ?= -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
CG_CFLAGS  := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -MMD -MP $(PKG_CFLAGS) $(SAN_FLAGS)
CG_LDFLAGS := $(SAN_FLAGS)
CG_LIBS    := $(PKG_LIBS) -lpthread -lm

SRC     := $(sort $(wildcard src/*/*.c))
MAIN    := src/cli/main.c
LIBSRC  := $(filter-out $(MAIN),$(SRC))
LIBOBJ  := $(LIBSRC:%.c=$(BUILD)/%.o)
MAINOBJ := $(MAIN:%.c=$(BUILD)/%.o)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)

# Small C programs the integration tests profile (native workloads).
TESTPROG_SRC := $(sort $(wildcard tests/programs/*.c))
TESTPROG_BIN := $(TESTPROG_SRC:tests/programs/%.c=$(BUILD)/tests/programs/%)

# Fuzz harnesses: one per parser of outside input, built with clang's
# libFuzzer, ASan and UBSan; the library objects apart in build-fuzz/.
FUZZ_BUILD := build-fuzz
FUZZ_CC    ?= clang
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# clang (unlike gcc) flags the va_list printf of cg_vlog under -Wformat=2.
FUZZ_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -MMD -MP \
	$(PKG_CFLAGS) -O1 -g $(FUZZ_SAN)
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIBOBJ := $(LIBSRC:%.c=$(FUZZ_BUILD)/%.o)

.PHONY: fuzz fuzz-bin
.PHONY: all deps check unit integration demo asan asan-bin asan-check valgrind-check \
	bench install clean layouts

all: cgprof

cgprof: $(BUILD)/cgprof
	@if [ "$(BUILD)" = build ]; then cp $< $@; fi

# Objects, not the archive: every runtime in the tree is linked in.
$(BUILD)/cgprof: $(MAINOBJ) $(LIBOBJ)
	$(CC) $(CG_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CG_LIBS)

$(BUILD)/libcgprof.a: $(LIBOBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libcgprof.a
	@mkdir -p $(dir $@)
	$(CC) $(CG_CFLAGS) $(CHECK_CFLAGS) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libcgprof.a $(CG_LDFLAGS) $(CHECK_LIBS) $(CG_LIBS)

$(BUILD)/tests/programs/%: tests/programs/%.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -fno-omit-frame-pointer -fno-inline -o $@ $< -lpthread -lm

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libcgprof.a: $(FUZZ_LIBOBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libcgprof.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc/target -Isrc/python -Isrc/upload \
		-Isrc/jvm -o $@ $< $(FUZZ_BUILD)/libcgprof.a $(CG_LIBS)

# The Debian packages, then (once per machine, cached outside the
# checkout) the sid root with CPython 3.14/3.15 and JDK 21 for the tests.
deps:
	@sh scripts/deps.sh
	@sh tests/rig/sid-root.sh

# The README's test command: everything, from a fresh Debian 12 machine.
# The suite runs twice: on the normal build, then on the sanitized one.
check: deps
	$(MAKE) -j$(JOBS) WERROR=$(WERROR) all unit-bin testprogs fuzz-bin
	$(MAKE) -j$(JOBS) WERROR=$(WERROR) asan-bin
	@CGPROF_BUILD=$(BUILD) sh tests/run-all.sh

unit-bin: $(UNIT_BIN)
testprogs: $(TESTPROG_BIN)

unit: unit-bin
	@CGPROF_BUILD=$(BUILD) CGPROF_ONLY=unit sh tests/run-all.sh

fuzz-bin: $(FUZZ_BIN)

fuzz: fuzz-bin
	@CGPROF_FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh

integration: all testprogs
	@CGPROF_BUILD=$(BUILD) CGPROF_ONLY=integration sh tests/run-all.sh

demo: deps
	$(MAKE) all
	./cgprof run -o demo.svg -- $(PYTHON) examples/python/demo.py
	@echo "flame graph written to $(CURDIR)/demo.svg"

# Sanitized build: its own object tree, same sources and flags plus
# -fsanitize; the test programs stay uninstrumented (they are targets).
ASAN_MAKE = $(MAKE) BUILD=build-asan SANITIZER=address,undefined CFLAGS="-O1 -g" WERROR=$(WERROR)
asan:
	$(ASAN_MAKE) build-asan/cgprof
asan-bin:
	$(ASAN_MAKE) build-asan/cgprof unit-bin testprogs
asan-check: asan-bin
	@CGPROF_ONLY=asan sh tests/run-all.sh

valgrind-check: unit-bin
	@CGPROF_BUILD=$(BUILD) CGPROF_ONLY=valgrind sh tests/run-all.sh

# Regenerate src/python/layouts.gen.c from every CPython's own headers.
layouts:
	$(PYTHON) scripts/gen-python-layouts.py > src/python/layouts.gen.c.tmp
	mv src/python/layouts.gen.c.tmp src/python/layouts.gen.c

bench: all
	$(MAKE) -C bench run AUSTIN=$(AUSTIN)

# The binary, the two man pages and the example config; nothing else.
install: cgprof
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(SYSCONFDIR)/cgprof
	install -m 0755 cgprof $(DESTDIR)$(PREFIX)/bin/cgprof
	install -m 0644 man/cgprof.1 $(DESTDIR)$(PREFIX)/share/man/man1/cgprof.1
	install -m 0644 man/cgprof.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/cgprof.conf.5
	install -m 0644 examples/cgprof.conf $(DESTDIR)$(SYSCONFDIR)/cgprof/cgprof.conf.example

clean:
	rm -rf build build-asan $(FUZZ_BUILD) cgprof

-include $(LIBOBJ:.o=.d) $(MAINOBJ:.o=.d) $(FUZZ_LIBOBJ:.o=.d) $(FUZZ_BIN:=.d)
