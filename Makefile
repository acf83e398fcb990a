# raida-healing: build, test, install. `make demo` runs the main job; `make test` runs every test.
#
# Parts owned by one topic live in mk/*.mk: each declares its C programs (c_program below),
# its own targets, and appends them to TEST_TARGETS and CLEAN_PATHS. This file holds what
# they share: the library, the build variants and the paths of every program, so no
# fragment depends on another's variables and the include order does not matter.
#
# `make help` prints the lines starting with "##" in this file and in mk/*.mk.
#
## make                    the release library (target/release/libraida_healing.{so,a}) and the man page (build/raida-healing.1); the header is committed
## make test               every test suite below that says "(make test)": one line per suite ([i/N] NAME ... passed in T s), logs in build/logs/, a tally line; on a failure the first error line and the log's last 8 lines (TEST_STOP=1 stops there)
## make help               this list
## make install            builds nothing (make && sudo make install): stripped libs + debug file (STRIP=0: unstripped, no debug file), header, .pc, the ops tool (module, command, man page), licences and docs; runs ldconfig or says how the library is found; PREFIX LIBDIR INCLUDEDIR BINDIR PKGCONFIGDIR DEBUGDIR PYTHONDIR DOCDIR MANDIR DATADIR DESTDIR STRIP
## make uninstall          removes what `make install` put there and the directories it created; runs ldconfig where install did
## make dist               build/dist/raida-healing-VERSION.tar.gz (git archive of HEAD, Cargo.lock, nothing vendored) and its .sha256
## make clean              cargo clean and build/
## make fmt-check          cargo fmt --check
## make clippy             clippy over every target, warnings are errors
## make header             regenerates include/raida_healing.h (cbindgen, only built here: the header feature)
## make check-header       the committed header is what cbindgen generates, compared file to file (no git needed) (make test)
## make check-abi          exported symbols and their versions (raida_healing.map), header functions and struct layouts against abi/ (the SOVERSION rule of docs/abi.md) (make test)
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

# The ops tool's documentation and the licences (GNU names).
DATAROOTDIR ?= $(PREFIX)/share
DOCDIR      ?= $(DATAROOTDIR)/doc/raida-healing
MANDIR      ?= $(DATAROOTDIR)/man
# The Prometheus alerting rules and the Grafana dashboard (docs/metrics.md).
DATADIR     ?= $(DATAROOTDIR)/raida-healing
# STRIP=0 installs the libraries as built (debug info in them) and no debug file, for a
# packager whose tools strip and split debug info themselves (dh_strip, find-debuginfo).
STRIP       ?= 1

# Where cargo puts the release build (it honours CARGO_TARGET_DIR; so do we).
LIB_DIR := $(or $(CARGO_TARGET_DIR),target)/release
SO      := $(LIB_DIR)/libraida_healing.so
STATIC  := $(LIB_DIR)/libraida_healing.a
# The system libraries rustc says a program linking $(STATIC) needs (for Libs.private).
NATIVE_LIBS  = $(BUILD)/native-static-libs
HEADER  := include/raida_healing.h
# The symbol versions of the .so (docs/abi.md, "Symbol versions"): read by build.rs and
# by the ABI guard.
VERSION_SCRIPT := raida_healing.map
TOOL    := tools/raida_healing.py
BUILD   := build
# raida-healing(1), generated from the ops tool's own help (help2man, tools/man_sections.py).
MAN_PAGE := $(BUILD)/raida-healing.1

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

.PHONY: all lib man header test help cargo-test check-header check-abi abi-baseline check-docs fmt-check clippy clean install uninstall dist FORCE

all: lib man

man: $(MAN_PAGE)

# The page's date: SOURCE_DATE_EPOCH when set, else the last commit's in a checkout, else
# Cargo.toml's time (a `make dist` tarball holds the commit's time), so two builds of one
# source write the same page. COLUMNS fixes argparse's wrapping.
MAN_EPOCH = $(or $(SOURCE_DATE_EPOCH),$(if $(wildcard .git),$(shell git log -1 --format=%ct 2>/dev/null)),$(shell stat -c %Y Cargo.toml))

$(MAN_PAGE): $(TOOL) tools/man_sections.py
	@mkdir -p $(@D)
	@command -v help2man >/dev/null || { echo "make: help2man is needed for the man page (Debian: apt-get install help2man)"; exit 1; }
	COLUMNS=80 python3 tools/man_sections.py > $(BUILD)/raida-healing.h2m
	COLUMNS=80 SOURCE_DATE_EPOCH=$(MAN_EPOCH) help2man --no-info --no-discard-stderr --section 1 \
		--name "check a libraida_healing build and look into a stopped RAIDA server's folder" \
		--include $(BUILD)/raida-healing.h2m --output $@ "python3 $(TOOL)"

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
	$(CARGO) bench --bench hostile --locked -- --test

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
# symbols, the header's functions, the version script's nodes and the committed baseline
# abi/ (exports with their versions, declarations with their struct layouts, SOVERSION)
# agree; an incompatible change with an unchanged SOVERSION fails.
# tools/tests/test_check_abi.py shows it failing for a removed symbol, a changed struct,
# a leaked symbol, an unversioned and a wrongly versioned symbol.
check-abi: $(SO)
	python3 tools/check_abi.py --so $(SO) --header $(HEADER) --soversion $(SOVERSION) --baseline abi --version-script $(VERSION_SCRIPT)
	PYTHONDONTWRITEBYTECODE=1 python3 tools/tests/test_check_abi.py --cc "$(CC)"

abi-baseline: $(SO)
	python3 tools/check_abi.py --so $(SO) --header $(HEADER) --soversion $(SOVERSION) --baseline abi --version-script $(VERSION_SCRIPT) --write

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
# per suite, the tally at the end; a failed suite's first error line, log path and last lines are shown
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
# without debug info (STRIP=0: both as built, no debug file); the header; the .pc file; the
# ops tool's module in PYTHONDIR, its launcher BINDIR/raida-healing and its man page; the
# licences, README, CHANGELOG and the operator's docs in DOCDIR. The directories it creates
# are recorded (mk/install_dirs.sh) so that uninstall removes them again. Then says how
# programs will find the library at run time (mk/install_note.sh), running ldconfig where
# that is the way.
SO_FILE := libraida_healing.so.$(VERSION)
DOC_FILES := README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE
# What an operator or a packager reads (README links to them under docs/).
DOC_PAGES := docs/abi.md docs/fix.md docs/legacy-host.md docs/standalone.md docs/tickets.md docs/wire-protocol.md
# Directories only this project puts files in: uninstall always removes them.
# (Python writes the module's bytecode into PYTHONDIR/__pycache__ when the tool first runs
# with write access there, e.g. as root: uninstall removes that too, as py3clean would.)
OWN_DIRS := $(PYTHONDIR)/__pycache__ $(PYTHONDIR) $(LIBDIR)/raida-healing $(DOCDIR)/docs $(DOCDIR)
INSTALL_DIRS := $(LIBDIR) $(if $(filter 0,$(STRIP)),,$(DEBUGDIR)) $(INCLUDEDIR) $(PKGCONFIGDIR) \
	$(BINDIR) $(PYTHONDIR) $(DOCDIR)/docs $(MANDIR)/man1
OWN_DIRS += $(DATADIR)/prometheus $(DATADIR)/grafana $(DATADIR)
INSTALL_DIRS += $(DATADIR)/prometheus $(DATADIR)/grafana

install:
	@for f in $(SO) $(STATIC) $(NATIVE_LIBS) $(MAN_PAGE); do \
		[ -f "$$f" ] || { echo "make install: $$f is missing; build first: make && sudo make install"; exit 1; }; done
	@sh mk/install_dirs.sh "$(DESTDIR)" "$(LIBDIR)/raida-healing/installed-directories" $(INSTALL_DIRS)
ifeq ($(STRIP),0)
	install -m 0755 $(SO) $(DESTDIR)$(LIBDIR)/$(SO_FILE)
	install -m 0644 $(STATIC) $(DESTDIR)$(LIBDIR)/libraida_healing.a
else
	$(OBJCOPY) --only-keep-debug --compress-debug-sections=zlib $(SO) $(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug
	chmod 0644 $(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug
	$(OBJCOPY) --strip-unneeded --remove-section=.comment \
		--add-gnu-debuglink=$(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug $(SO) $(DESTDIR)$(LIBDIR)/$(SO_FILE)
	chmod 0755 $(DESTDIR)$(LIBDIR)/$(SO_FILE)
	$(OBJCOPY) --strip-debug --remove-section=.comment --enable-deterministic-archives \
		$(STATIC) $(DESTDIR)$(LIBDIR)/libraida_healing.a
	chmod 0644 $(DESTDIR)$(LIBDIR)/libraida_healing.a
endif
	ln -sfn $(SO_FILE) $(DESTDIR)$(LIBDIR)/libraida_healing.so.$(SOVERSION)
	ln -sfn libraida_healing.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libraida_healing.so
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
	install -m 0644 $(MAN_PAGE) $(DESTDIR)$(MANDIR)/man1/raida-healing.1
	install -m 0644 $(DOC_FILES) $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(DOC_PAGES) $(DESTDIR)$(DOCDIR)/docs/
	install -m 0644 monitoring/raida_healing_alerts.yml monitoring/raida_healing_alerts_test.yml $(DESTDIR)$(DATADIR)/prometheus/
	install -m 0644 monitoring/raida_healing_dashboard.json $(DESTDIR)$(DATADIR)/grafana/
	@LDCONFIG="$(LDCONFIG)" sh mk/install_note.sh "$(DESTDIR)" "$(LIBDIR)" "$(SOVERSION)" "$(PYTHONDIR)"

# Every file install may have written (either STRIP) and the module's bytecode, then this project's own directories,
# then the directories install created (deepest first, each only when empty), then
# ldconfig where install ran it (mk/install_note.sh uninstall).
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libraida_healing.so* $(DESTDIR)$(LIBDIR)/libraida_healing.a \
		$(DESTDIR)$(DEBUGDIR)/$(SO_FILE).debug $(DESTDIR)$(INCLUDEDIR)/raida_healing.h \
		$(DESTDIR)$(PKGCONFIGDIR)/raida_healing.pc $(DESTDIR)$(BINDIR)/raida-healing \
		$(DESTDIR)$(PYTHONDIR)/raida_healing.py $(DESTDIR)$(MANDIR)/man1/raida-healing.1 \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(DOC_FILES)) $(addprefix $(DESTDIR)$(DOCDIR)/,$(DOC_PAGES)) \
		$(DESTDIR)$(PYTHONDIR)/__pycache__/raida_healing.*.pyc
	rm -f $(DESTDIR)$(DATADIR)/prometheus/raida_healing_alerts.yml $(DESTDIR)$(DATADIR)/prometheus/raida_healing_alerts_test.yml $(DESTDIR)$(DATADIR)/grafana/raida_healing_dashboard.json
	@created=$(DESTDIR)$(LIBDIR)/raida-healing/installed-directories; \
	dirs=$$(cat "$$created" 2>/dev/null | sort -r); rm -f "$$created"; \
	for d in $(addprefix $(DESTDIR),$(OWN_DIRS)); do rmdir "$$d" 2>/dev/null || true; done; \
	for d in $$dirs; do rmdir "$(DESTDIR)$$d" 2>/dev/null || true; done
	@LDCONFIG="$(LDCONFIG)" sh mk/install_note.sh "$(DESTDIR)" "$(LIBDIR)" "$(SOVERSION)" "$(PYTHONDIR)" uninstall

# The source tarball of a release: the committed tree at HEAD (git archive: every file's
# time is the commit's, so the tarball is the same wherever it is made), Cargo.lock in it,
# no dependency vendored (cargo fetches them from crates.io, or its cache), and its
# SHA-256 beside it in sha256sum's format. `make dist-test` builds it with no git.
DIST_NAME := raida-healing-$(VERSION)
DIST      := $(BUILD)/dist/$(DIST_NAME).tar.gz

dist:
	@command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 \
		|| { echo "make dist: needs a git checkout (it archives the committed tree)"; exit 1; }
	@git diff --quiet HEAD -- || echo "make dist: note: uncommitted changes are not in the tarball (it is HEAD)"
	@mkdir -p $(BUILD)/dist
	git archive --format=tar --prefix=$(DIST_NAME)/ HEAD | gzip -n -9 > $(DIST)
	cd $(BUILD)/dist && sha256sum $(DIST_NAME).tar.gz > $(DIST_NAME).tar.gz.sha256
	@echo "make dist: $(DIST) and $(DIST).sha256"
