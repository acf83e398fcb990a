# raida-healing: build, test, install. `make demo` runs the main job; `make test` runs every test.
#
# Parts owned by one topic live in mk/*.mk: each declares its C programs (c_program below),
# its own targets, and appends them to TEST_TARGETS and CLEAN_PATHS. This file holds what
# they share: the library, the build variants and the paths of every program, so no
# fragment depends on another's variables and the include order does not matter.
#
# `make help` prints the lines starting with "##" in this file and in mk/*.mk.
#
## make                    the release library (target/release/libraida_healing.{so,a}); the header is committed
## make test               every test suite below that says "(make test)"; ends with a tally line
## make help               this list
## make install            builds nothing (make && sudo make install): stripped libs + debug file, header, .pc, raida-healing tool; PREFIX LIBDIR INCLUDEDIR BINDIR PKGCONFIGDIR DEBUGDIR DESTDIR
## make uninstall          removes what `make install` put there
## make clean              cargo clean and build/
## make fmt-check          cargo fmt --check
## make clippy             clippy over every target, warnings are errors
## make header             regenerates include/raida_healing.h (cbindgen, only built here: the header feature)
## make check-header       the committed header is what cbindgen generates (make test)
## make check-docs         every docs reference resolves; the status table matches the header (make test)
## make cargo-test         the Rust unit and integration tests, the benches once in test mode (make test)

CARGO   ?= cargo
CC      ?= cc
OBJCOPY ?= objcopy
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# Written once, in build.rs (which gives the .so its SONAME); read from there.
SOVERSION := $(shell sed -n 's/^const SOVERSION: &str = "\(.*\)";/\1/p' build.rs)

# Where `make install` puts things (GNU names; DESTDIR stages a package).
PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
BINDIR      ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# Separate debug info of the stripped .so: gdb and eu-stack look in <lib dir>/.debug/ for
# the file named by the library's .gnu_debuglink, with no configuration.
DEBUGDIR    ?= $(LIBDIR)/.debug

# Where cargo puts the release build (it honours CARGO_TARGET_DIR; so do we).
LIB_DIR := $(or $(CARGO_TARGET_DIR),target)/release
SO      := $(LIB_DIR)/libraida_healing.so
STATIC  := $(LIB_DIR)/libraida_healing.a
# The system libraries rustc says a program linking $(STATIC) needs (for Libs.private).
NATIVE_LIBS := $(LIB_DIR)/libraida_healing.native-static-libs
HEADER  := include/raida_healing.h
TOOL    := tools/raida_healing.py
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

.PHONY: all lib header test help cargo-test check-header check-docs fmt-check clippy clean install uninstall FORCE

all: lib

lib: $(SO)

# Cargo decides what is stale. rustc's "native-static-libs" note (asked for in
# .cargo/config.toml; replayed by cargo when nothing was rebuilt) is kept for the .pc file.
$(SO) $(STATIC): FORCE
	@mkdir -p $(BUILD)
	@bash -o pipefail -c '$(CARGO) build --release --locked 2>&1 | tee $(BUILD)/cargo-build.log'
	@libs=$$(sed -n 's/^note: native-static-libs: //p' $(BUILD)/cargo-build.log | tail -n 1); \
	if [ -n "$$libs" ]; then \
		[ "$$libs" = "$$(cat $(NATIVE_LIBS) 2>/dev/null)" ] || echo "$$libs" > $(NATIVE_LIBS); \
	elif [ ! -s $(NATIVE_LIBS) ]; then \
		echo "rustc printed no native-static-libs (RUSTFLAGS replaces .cargo/config.toml's);" \
			"unset RUSTFLAGS so make can write $(NATIVE_LIBS)"; exit 1; \
	fi

# The header is committed; only this regenerates it (build.rs with the `header` feature,
# the only build that compiles cbindgen). `cargo check` runs build.rs without a release build.
header:
	$(CARGO) check --locked --lib --features header

$(SONAME_LINK): $(SO)
	mkdir -p $(@D)
	ln -sfn $(abspath $(SO)) $@

include $(sort $(wildcard mk/*.mk))

# The criterion benches run once each in test mode too, so they cannot rot.
cargo-test:
	$(CARGO) test --release --locked
	$(CARGO) bench --bench core --locked -- --test

# The committed header must be exactly what cbindgen generates from the sources.
check-header: header
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
	@echo "suites: $(words $(TEST_SUITES)) passed, 0 failed"

help:
	@sed -n 's/^## \{0,1\}//p' Makefile $(sort $(wildcard mk/*.mk))

clean:
	$(CARGO) clean
	rm -rf $(CLEAN_PATHS)

# Installs what `make` built and builds nothing (`make && sudo make install`): the .so
# stripped, its debug info in DEBUGDIR joined to it by a debuglink; the .a without debug
# info; the header; the .pc file; the ops tool as BINDIR/raida-healing.
SO_FILE := libraida_healing.so.$(VERSION)

install:
	@for f in $(SO) $(STATIC) $(NATIVE_LIBS); do \
		[ -f "$$f" ] || { echo "make install: $$f is missing; build first: make && sudo make install"; exit 1; }; done
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(DEBUGDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	$(OBJCOPY) --only-keep-debug $(SO) $(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug
	chmod 0644 $(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug
	$(OBJCOPY) --strip-unneeded --remove-section=.comment \
		--add-gnu-debuglink=$(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug $(SO) $(DESTDIR)$(LIBDIR)/$(SO_FILE)
	chmod 0755 $(DESTDIR)$(LIBDIR)/$(SO_FILE)
	ln -sfn $(SO_FILE) $(DESTDIR)$(LIBDIR)/libraida_healing.so.$(SOVERSION)
	ln -sfn libraida_healing.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libraida_healing.so
	$(OBJCOPY) --strip-debug --remove-section=.comment --enable-deterministic-archives \
		$(STATIC) $(DESTDIR)$(LIBDIR)/libraida_healing.a
	chmod 0644 $(DESTDIR)$(LIBDIR)/libraida_healing.a
	install -m 0644 $(HEADER) $(DESTDIR)$(INCLUDEDIR)/raida_healing.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
		-e 's|@VERSION@|$(VERSION)|g' -e "s|@LIBS_PRIVATE@|$$(cat $(NATIVE_LIBS))|g" \
		raida_healing.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/raida_healing.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/raida_healing.pc
	sed -e 's|^INSTALLED_LIBRARY = None$$|INSTALLED_LIBRARY = "$(LIBDIR)/libraida_healing.so.$(SOVERSION)"|' \
		$(TOOL) > $(DESTDIR)$(BINDIR)/raida-healing
	chmod 0755 $(DESTDIR)$(BINDIR)/raida-healing

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libraida_healing.so* $(DESTDIR)$(LIBDIR)/libraida_healing.a \
		$(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug $(DESTDIR)$(INCLUDEDIR)/raida_healing.h \
		$(DESTDIR)$(PKGCONFIGDIR)/raida_healing.pc $(DESTDIR)$(BINDIR)/raida-healing
