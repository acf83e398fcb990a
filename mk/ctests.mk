# C tests of the library through its header and shared object (docs/ctests.md). The test
# programs link the .so WITHOUT -rdynamic, as the legacy server does, and find it at run
# time through an rpath (LINK_SO and SONAME_LINK in the Makefile).
#
## make c-header-test      the header stands alone (C and C++) and declares only our names (make test)
## make c-test             layout, harness, commands, claims and loader tests against the .so (make test)
## make c-test-asan        the same C tests built with ASan+UBSan (make test)
## make c-test-valgrind    the plain C tests under valgrind memcheck (make test)
## make static-link-test   test_commands linked against libraida_healing.a (make test)
## make install-test       make install into temporary prefixes: stripped libs (and STRIP=0), debug files, symbol versions, sizes, dirs, pkg-config, tool, man page, licences, uninstall (make test)

CT_SRC     := c_tests
CT_HARNESS := $(CT_SRC)/host.c $(CT_SRC)/request.c
CT_TESTS   := test_layout test_host test_commands test_claims
# test_claims makes authenticated claims' tags with C code of its own (claim_tag.c).
CT_EXTRA_test_claims := $(CT_SRC)/claim_tag.c
$(foreach t,$(CT_TESTS),$(eval $(call c_program,$(t),$(CT_SRC)/$(t).c $(CT_HARNESS) $(CT_EXTRA_$(t)))))

# test_commands once more, linked against the static archive instead of the .so.
CT_STATIC_BIN := $(call bin,test_commands_static)

.PHONY: c-header-test c-test c-test-build c-test-asan c-test-valgrind static-link-test install-test

# The system libraries are the ones rustc reported for the archive (written with it).
$(CT_STATIC_BIN): $(CT_SRC)/test_commands.c $(CT_HARNESS) $(C_HEADERS) $(STATIC) $(NATIVE_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CWARN) $(CFLAGS) $(CPPFLAGS) -o $@ $(CT_SRC)/test_commands.c $(CT_HARNESS) $(STATIC) $$(cat $(NATIVE_LIBS))

# The legacy server includes the header next to its own headers: it must stand alone
# (as C and as C++) and declare only the module's names, so nothing can collide.
c-header-test: $(HEADER)
	@set -e; \
	macros=$$(sed -nE 's/^#define ([A-Za-z_][A-Za-z0-9_]*).*/\1/p' $(HEADER) | grep -v '^RAIDA_' || true); \
	funcs=$$(sed -nE 's/^[A-Za-z_][A-Za-z0-9_ ]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/p' $(HEADER)); \
	strays=$$(echo "$$funcs" | grep -vE '^(cmd_[a-z_]+|send_validate_ticket_job|raida_healing_[a-z_]+)$$' || true); \
	if [ -n "$$macros$$strays" ]; then \
		echo "$(HEADER) declares names outside RAIDA_*, cmd_*, raida_healing_*:" $$macros $$strays; exit 1; fi; \
	handlers=$$(sed -nE 's/^  X\([0-9]+, (cmd_[a-z_]+)\).*/\1/p' $(HEADER)); \
	[ -n "$$handlers" ] || { echo "$(HEADER): RAIDA_HEALING_COMMANDS lists no handler"; exit 1; }; \
	for f in $$handlers send_validate_ticket_job; do \
		echo "$$funcs" | grep -qx "$$f" || { echo "$(HEADER): no declaration of $$f found"; exit 1; }; done; \
	echo "$(HEADER): $$(echo $$funcs | wc -w) functions, all macros RAIDA_*"
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c $(HEADER)
	$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ $(HEADER)

c-test-build: $(foreach t,$(CT_TESTS),$(call bin,$(t)))

# Each binary ends with "N passed, 0 failed" and exits non-zero on any failure.
c-test: c-test-build
	@for t in $(CT_TESTS); do echo "== $$t"; $(call bin,$$t) || exit 1; done
	@echo "== test_dlopen.py"
	python3 $(CT_SRC)/test_dlopen.py $(SO)

c-test-asan: $(foreach t,$(CT_TESTS),$(call asan_bin,$(t)))
	@for t in $(CT_TESTS); do echo "== $$t (ASan+UBSan)"; $(SAN_ENV) $(call asan_bin,$$t) || exit 1; done

c-test-valgrind: c-test-build
	@for t in $(CT_TESTS); do echo "== $$t (valgrind)"; $(VALGRIND) $(call bin,$$t) || exit 1; done

static-link-test: $(CT_STATIC_BIN)
	@if readelf -d $< | grep -q 'libraida_healing'; then echo "$< still needs the .so"; exit 1; fi
	@echo "== test_commands (static archive)"
	$<

# Installs into throw-away prefixes the ways a packager and an operator do and checks every
# installed file: c_tests/test_install.sh (builds nothing itself: it installs with CARGO=false).
install-test: $(SO) $(STATIC) $(NATIVE_LIBS) $(MAN_PAGE)
	c_tests/test_install.sh "$(MAKE)" "$(CC)" "$(CWARN)" "$(SOVERSION)" "$(VERSION)"

TEST_TARGETS += c-header-test c-test c-test-asan c-test-valgrind static-link-test install-test
