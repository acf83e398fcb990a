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
## make test               every test suite below that says "(make test)": one line per suite ([i/N] NAME ... passed in T s), logs in build/logs/, a tally line; on a failure the first error line (TEST_STOP=1 stops there)
## make help               this list
## make install            builds nothing (make && sudo make install): stripped libs + debug file, header, .pc, the ops tool (module + command); runs ldconfig or says how the library is found; PREFIX LIBDIR INCLUDEDIR BINDIR PKGCONFIGDIR DEBUGDIR PYTHONDIR DESTDIR
## make uninstall          removes what `make install` put there
## make clean              cargo clean and build/
## make fmt-check          cargo fmt --check
## make clippy             clippy over every target, warnings are errors
## make header             regenerates include/raida_healing.h (cbindgen, only built here: the header feature)
## make check-header       the committed header is what cbindgen generates, compared file to file (no git needed) (make test)
## make check-abi          exported symbols, header functions and struct layouts against abi/ (the SOVERSION rule of docs/abi.md) (make test)
## make abi-baseline       rewrites abi/ from the current build (after a deliberate ABI change; see docs/abi.md)
## make check-docs         every docs reference resolves; the status, export and settings tables match the header and src/settings.rs (make test)
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
# The ops tool's Python module (import raida_healing); BINDIR/raida-healing launches it.
PYTHONDIR   ?= $(LIBDIR)/raida-healing/python
LDCONFIG    ?= ldconfig
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# Separate debug info of the stripped .so: gdb and eu-stack look in <lib dir>/.debug/ for
# the file named by the library's .gnu_debuglink, with no configuration.
DEBUGDIR    ?= $(LIBDIR)/.debug

# Every cargo command of this Makefile builds with the source paths remapped, so the debug
# info (and panic locations) name /usr/src/raida-healing-VERSION and /cargo/registry rather
# than this checkout or the builder's home: the same sources give the same library wherever
# they are built. gdb: `set substitute-path /usr/src/raida-healing-VERSION <checkout>`.
# (A RUSTFLAGS of your own is kept after these.)
CARGO_HOME_DIR := $(or $(CARGO_HOME),$(HOME)/.cargo)
SOURCE_PATH    := /usr/src/raida-healing-$(VERSION)
REMAP_FLAGS    := --remap-path-prefix=$(CURDIR)=$(SOURCE_PATH) --remap-path-prefix=$(CARGO_HOME_DIR)=/cargo
# Once only: a sub-make inherits the exported value, and a second copy would be a new
# fingerprint (a rebuild) for cargo.
ifeq ($(findstring $(REMAP_FLAGS),$(RUSTFLAGS)),)
export RUSTFLAGS := $(strip $(REMAP_FLAGS) $(RUSTFLAGS))
endif

# Where cargo puts the release build (it honours CARGO_TARGET_DIR; so do we).
LIB_DIR := $(or $(CARGO_TARGET_DIR),target)/release
SO      := $(LIB_DIR)/libraida_healing.so
STATIC  := $(LIB_DIR)/libraida_healing.a
# The system libraries rustc says a program linking $(STATIC) needs (for Libs.private).
NATIVE_LIBS  = $(BUILD)/native-static-libs
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

.PHONY: all lib header test help cargo-test check-header check-abi abi-baseline check-docs fmt-check clippy clean install uninstall FORCE

all: lib

lib: $(SO) $(NATIVE_LIBS)

# Cargo decides what is stale. Its output is shown only when the build fails (it is kept
# in build/cargo-build.log).
$(SO) $(STATIC): FORCE
	@mkdir -p $(BUILD)
	@$(CARGO) build --release --locked >$(BUILD)/cargo-build.log 2>&1 \
		|| { cat $(BUILD)/cargo-build.log; echo "make: cargo build failed (log: $(BUILD)/cargo-build.log)"; exit 1; }

# The system libraries a program linking the archive needs, as rustc reports them
# (`--print native-static-libs`), for the .pc file's Libs.private. Asked for once per
# change of the dependencies, in a build of its own (build/native-libs, a debug build), so
# no other cargo command prints rustc's note or has its fingerprint changed by the flag.
$(NATIVE_LIBS): Cargo.toml Cargo.lock build.rs
	@mkdir -p $(@D)
	@$(CARGO) rustc --locked --lib --crate-type staticlib --target-dir $(BUILD)/native-libs \
		-- --print native-static-libs >$(BUILD)/native-libs.log 2>&1 \
		|| { cat $(BUILD)/native-libs.log; exit 1; }
	@libs=$$(sed -n 's/^note: native-static-libs: //p' $(BUILD)/native-libs.log | tail -n 1); \
	[ -n "$$libs" ] || { cat $(BUILD)/native-libs.log; echo "make: rustc printed no native-static-libs"; exit 1; }; \
	echo "$$libs" > $@

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

# The committed header must be exactly what cbindgen generates from the sources. Compares
# files (a source tarball has no git): the committed copy is kept aside, the header
# regenerated, the two compared, and the committed copy put back; a stale header's
# regenerated text stays in build/raida_healing.h.generated.
check-header:
	@mkdir -p $(BUILD)
	@cp $(HEADER) $(BUILD)/raida_healing.h.committed
	@$(CARGO) check --locked --lib --features header >$(BUILD)/check-header.log 2>&1 \
		|| { cp $(BUILD)/raida_healing.h.committed $(HEADER); cat $(BUILD)/check-header.log; exit 1; }
	@cp $(HEADER) $(BUILD)/raida_healing.h.generated
	@# Put the committed copy back only when cbindgen changed it: a rewrite would touch the
	@# header's time and make every C program of a warm `make test` rebuild.
	@cmp -s $(BUILD)/raida_healing.h.committed $(HEADER) || cp $(BUILD)/raida_healing.h.committed $(HEADER)
	@diff -u $(HEADER) $(BUILD)/raida_healing.h.generated || { \
		echo "error: $(HEADER) is stale: cbindgen generates $(BUILD)/raida_healing.h.generated (make header writes it)"; exit 1; }
	@echo "header: the committed copy is byte for byte what cbindgen generates"

# The ABI guard (tools/check_abi.py, the rule in docs/abi.md): the .so's defined dynamic
# symbols, the header's functions and the committed baseline abi/ (exports, declarations
# with their struct layouts, SOVERSION) agree; an incompatible change with an unchanged
# SOVERSION fails. tools/tests/test_check_abi.py shows it failing for a removed symbol, a
# changed struct and a leaked symbol.
check-abi: $(SO)
	python3 tools/check_abi.py --so $(SO) --header $(HEADER) --soversion $(SOVERSION) --baseline abi
	PYTHONDONTWRITEBYTECODE=1 python3 tools/tests/test_check_abi.py --cc "$(CC)"

abi-baseline: $(SO)
	python3 tools/check_abi.py --so $(SO) --header $(HEADER) --soversion $(SOVERSION) --baseline abi --write

# Every markdown link and docs/*.md reference resolves inside the repository, and the
# status table of docs/wire-protocol.md matches the header.
check-docs:
	python3 tools/check_docs.py
	PYTHONDONTWRITEBYTECODE=1 python3 tools/tests/test_check_docs.py

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

TEST_SUITES = lib cargo-test check-header check-abi check-docs $(TEST_TARGETS)

# Runs each suite as its own `make SUITE` with its output in build/logs/SUITE.log, one line
# per suite, the tally at the end; a failed suite's first error line and log are shown
# (tools/run_suites.py). TEST_STOP=1 stops at the first failure.
test:
	@python3 tools/run_suites.py --make "$(MAKE)" --logs $(BUILD)/logs \
		$(if $(filter 1,$(TEST_STOP)),--stop) $(TEST_SUITES)

help:
	@sed -n 's/^## \{0,1\}//p' Makefile $(sort $(wildcard mk/*.mk))

clean:
	$(CARGO) clean
	rm -rf $(CLEAN_PATHS)

# Installs what `make` built and builds nothing (`make && sudo make install`): the .so
# stripped, its debug info (compressed) in DEBUGDIR joined to it by a debuglink; the .a
# without debug info; the header; the .pc file; the ops tool's module in PYTHONDIR and its
# launcher BINDIR/raida-healing. Then says how programs will find the library at run time
# (mk/install_note.sh), running ldconfig where that is the way.
SO_FILE := libraida_healing.so.$(VERSION)

install:
	@for f in $(SO) $(STATIC) $(NATIVE_LIBS); do \
		[ -f "$$f" ] || { echo "make install: $$f is missing; build first: make && sudo make install"; exit 1; }; done
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(DEBUGDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(PYTHONDIR)
	$(OBJCOPY) --only-keep-debug --compress-debug-sections=zlib $(SO) $(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug
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
		-e 's|@VERSION@|$(VERSION)|g' -e "s|@NATIVE_LIBS@|$$(sed 's/-lgcc_s *//' $(NATIVE_LIBS))|g" \
		raida_healing.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/raida_healing.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/raida_healing.pc
	sed -e 's|^INSTALLED_LIBRARY = None$$|INSTALLED_LIBRARY = "$(LIBDIR)/libraida_healing.so.$(SOVERSION)"|' \
		$(TOOL) > $(DESTDIR)$(PYTHONDIR)/raida_healing.py
	chmod 0644 $(DESTDIR)$(PYTHONDIR)/raida_healing.py
	sed -e 's|@PYTHONDIR@|$(PYTHONDIR)|g' tools/raida-healing.in > $(DESTDIR)$(BINDIR)/raida-healing
	chmod 0755 $(DESTDIR)$(BINDIR)/raida-healing
	@LDCONFIG="$(LDCONFIG)" sh mk/install_note.sh "$(DESTDIR)" "$(LIBDIR)" "$(SOVERSION)" "$(PYTHONDIR)"

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libraida_healing.so* $(DESTDIR)$(LIBDIR)/libraida_healing.a \
		$(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug $(DESTDIR)$(INCLUDEDIR)/raida_healing.h \
		$(DESTDIR)$(PKGCONFIGDIR)/raida_healing.pc $(DESTDIR)$(BINDIR)/raida-healing \
		$(DESTDIR)$(PYTHONDIR)/raida_healing.py
	-rmdir $(DESTDIR)$(PYTHONDIR) $(DESTDIR)$(LIBDIR)/raida-healing 2>/dev/null
