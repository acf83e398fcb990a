# raida-healing: build, test, install. `make demo` runs the main job; `make test` runs every test.
#
# Parts owned by one topic live in mk/*.mk (each appends to TEST_TARGETS and
# CLEAN_PATHS); this file holds what they share.

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

.PHONY: all lib test cargo-test check-header check-docs fmt-check clippy clean install uninstall FORCE

all: lib

lib: $(SO)

# Cargo decides what is stale; build.rs regenerates the header on the way.
$(SO) $(STATIC) $(HEADER): FORCE
	$(CARGO) build --release --locked

$(BUILD):
	mkdir -p $(BUILD)

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
