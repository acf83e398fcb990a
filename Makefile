# raida-healing: build, test, install. `make demo` runs the main job; `make test` runs every test.
#
# Parts owned by one topic live in mk/*.mk: each declares its C programs (c_program below),
# its own targets, and appends them to TEST_TARGETS and CLEAN_PATHS. This file holds what
# they share: the library, the build variants and the paths of every program, so no
# fragment depends on another's variables and the include order does not matter.
#
# `make help` prints the lines starting with "##" in this file and in mk/*.mk.
#
## make                    the release library (target/release/libraida_healing.{so,a}) and the header
## make test               every test suite below that says "(make test)"; ends with a tally line
## make help               this list
## make install            PREFIX=/usr/local DESTDIR= : library, SONAME links, header, pkg-config file
## make uninstall          removes what `make install` put there
## make clean              cargo clean and build/
## make fmt-check          cargo fmt --check
## make clippy             clippy over every target, warnings are errors
## make check-header       the committed header is what cbindgen generates (make test)
## make check-docs         every docs reference resolves; the status table matches the header (make test)
## make cargo-test         the Rust unit and integration tests (make test)

CARGO   ?= cargo
CC      ?= cc
PREFIX  ?= /usr/local
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
SOVERSION := 0

# Where cargo puts the release build (it honours CARGO_TARGET_DIR; so do we).
LIB_DIR := $(or $(CARGO_TARGET_DIR),target)/release
SO      := $(LIB_DIR)/libraida_healing.so
STATIC  := $(LIB_DIR)/libraida_healing.a
HEADER  := include/raida_healing.h
BUILD   := build

# Strict flags for every C file of the project.
CWARN   := -std=gnu11 -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
CPPFLAGS += -Iinclude -Ic_tests

# Programs of ours link the .so as the legacy server does: through the header,
# -lraida_healing, never -rdynamic (the real server has none). The linker records the
# SONAME libraida_healing.so.0, which cargo does not create, so build/lib holds that name
# as a link to the release build and every program finds it through an rpath.
SONAME_LINK := $(BUILD)/lib/libraida_healing.so.$(SOVERSION)
LINK_SO     := -L$(LIB_DIR) -lraida_healing -Wl,-rpath,$(abspath $(BUILD)/lib) -lpthread

# Filled in by mk/*.mk.
TEST_TARGETS :=
CLEAN_PATHS  := $(BUILD)

# --- build variants, each defined once ---------------------------------------------------
#
#   plain       $(CFLAGS)                       -> $(call bin,NAME)       = build/NAME
#   ASan+UBSan  $(SAN_CFLAGS), run with $(SAN_ENV) -> $(call asan_bin,NAME) = build/asan/NAME
#   valgrind    $(VALGRIND) over the plain build
#
# The Rust .so is not instrumented; ASan's allocator checks and LeakSanitizer still cover
# what it hands to C, and these settings make any report fatal.
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_ENV    := ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=1 \
              UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# For a program that ends with _exit() under live threads (the node): LeakSanitizer's
# exit-time scan was seen to spin forever there; memcheck checks its leaks instead.
SAN_ENV_NO_LEAK_CHECK := $(subst detect_leaks=1,detect_leaks=0,$(SAN_ENV))
VALGRIND   := valgrind --tool=memcheck --quiet --error-exitcode=1 --leak-check=full \
              --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-fds=no

# Where a program's builds go. Functions of the name alone, so any fragment can name any
# program's binary whatever the include order.
bin      = $(BUILD)/$(1)
asan_bin = $(BUILD)/asan/$(1)

# Every C program depends on every header of ours (a handful; rebuilding a bit more often
# is cheaper than keeping per-program header lists in step).
C_HEADERS := $(HEADER) $(wildcard c_tests/*.h c_tests/node/*.h bench/*.h tools/tests/*.h)

# $(eval $(call c_program,NAME,SOURCES[,LIBS])) declares the plain and the ASan+UBSan build
# of one C program from its one source list. Without LIBS it links the .so as the legacy
# server does (LINK_SO); with LIBS (e.g. -lpthread) it links those instead.
define c_program
$(call bin,$(1)): $(2) $(C_HEADERS) $(if $(3),,$(SO) $(SONAME_LINK))
	@mkdir -p $$(@D)
	$$(CC) $$(CWARN) $$(CFLAGS) $$(CPPFLAGS) -o $$@ $(2) $(or $(3),$$(LINK_SO))

$(call asan_bin,$(1)): $(2) $(C_HEADERS) $(if $(3),,$(SO) $(SONAME_LINK))
	@mkdir -p $$(@D)
	$$(CC) $$(CWARN) $$(SAN_CFLAGS) $$(CPPFLAGS) -o $$@ $(2) $(or $(3),$$(LINK_SO))
endef

.PHONY: all lib test help cargo-test check-header check-docs fmt-check clippy clean install uninstall FORCE

all: lib

lib: $(SO)

# Cargo decides what is stale; build.rs regenerates the header on the way.
$(SO) $(STATIC) $(HEADER): FORCE
	$(CARGO) build --release --locked

$(SONAME_LINK): $(SO)
	mkdir -p $(@D)
	ln -sfn $(abspath $(SO)) $@

include $(sort $(wildcard mk/*.mk))

cargo-test:
	$(CARGO) test --release --locked

# The committed header must be exactly what cbindgen generates from the sources.
check-header: $(SO)
	@git diff --exit-code -- $(HEADER) || { echo "include/raida_healing.h is stale: commit the regenerated header"; exit 1; }
	@echo "header: committed copy matches cbindgen output"

# Every markdown link and docs/*.md reference resolves inside the repository, and the
# status table of docs/wire-protocol.md matches the header.
check-docs:
	python3 tools/check_docs.py

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

TEST_SUITES = cargo-test check-header check-docs $(TEST_TARGETS)

# Make stops at the first failing suite, so reaching the last line means all passed.
test: $(TEST_SUITES)
	@echo "make test suites: $(words $(TEST_SUITES)) passed, 0 failed"

help:
	@sed -n 's/^## \{0,1\}//p' Makefile $(sort $(wildcard mk/*.mk))

clean:
	$(CARGO) clean
	rm -rf $(CLEAN_PATHS)

install: $(SO) $(STATIC) $(HEADER)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(SO) $(DESTDIR)$(PREFIX)/lib/libraida_healing.so.$(VERSION)
	ln -sf libraida_healing.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libraida_healing.so.$(SOVERSION)
	ln -sf libraida_healing.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libraida_healing.so
	install -m 0644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/libraida_healing.a
	install -m 0644 $(HEADER) $(DESTDIR)$(PREFIX)/include/raida_healing.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' raida_healing.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/raida_healing.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libraida_healing.so* $(DESTDIR)$(PREFIX)/lib/libraida_healing.a \
		$(DESTDIR)$(PREFIX)/include/raida_healing.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/raida_healing.pc
