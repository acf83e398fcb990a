# raida-healing: build, test, install. `make demo` runs the main job; `make test` runs every test.
#
# Parts owned by one topic live in mk/*.mk (each appends to TEST_TARGETS and
# CLEAN_PATHS); this file holds what they share.

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

.PHONY: all lib header test cargo-test check-header fmt-check clippy clean install uninstall FORCE

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

$(BUILD):
	mkdir -p $(BUILD)

$(SONAME_LINK): $(SO)
	mkdir -p $(@D)
	ln -sfn $(abspath $(SO)) $@

include $(sort $(wildcard mk/*.mk))

cargo-test:
	$(CARGO) test --release --locked

# The committed header must be exactly what cbindgen generates from the sources.
check-header: header
	@git diff --exit-code -- $(HEADER) || { echo "include/raida_healing.h is stale: commit the regenerated header"; exit 1; }
	@echo "header: committed copy matches cbindgen output"

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets --locked -- -D warnings

TEST_SUITES = cargo-test check-header $(TEST_TARGETS)

# Make stops at the first failing suite, so reaching the last line means all passed.
test: $(TEST_SUITES)
	@echo "make test suites: $(words $(TEST_SUITES)) passed, 0 failed"

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
