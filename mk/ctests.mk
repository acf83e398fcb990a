# C tests of the library through its header and shared object (docs/ctests.md).
#
#   make c-header-test      the header stands alone (C and C++) and declares only our names
#   make c-test             layout, harness, commands and loader tests against the .so
#   make c-test-asan        the same C tests built with AddressSanitizer + UBSan
#   make c-test-valgrind    valgrind memcheck over the plain build
#   make static-link-test   test_commands linked against libraida_healing.a
#   make install-test       make install into temporary prefixes: stripped libraries, debug
#                           files, sizes, directories, pkg-config, the ops tool
#
# The test executables link the .so WITHOUT -rdynamic, as the legacy server does, and
# find it at run time through an rpath (LINK_SO and SONAME_LINK in the Makefile).

CT_SRC      := c_tests
CT_OUT      := $(BUILD)/ctests
CT_ASAN_OUT := $(BUILD)/ctests-asan
CT_HARNESS  := $(CT_SRC)/host.c $(CT_SRC)/request.c
CT_HEADERS  := $(CT_SRC)/host.h $(CT_SRC)/request.h $(CT_SRC)/check.h $(HEADER)
CT_TESTS    := test_layout test_host test_commands

CT_SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# The .so itself is not instrumented; these make any report in the C code fatal.
CT_ASAN_ENV := ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:exitcode=1 \
               UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
CT_VALGRIND := valgrind --tool=memcheck --quiet --error-exitcode=1 --leak-check=full \
               --errors-for-leak-kinds=definite --show-leak-kinds=definite \
               --track-fds=no --trace-children=no

.PHONY: c-header-test c-test c-test-build c-test-asan c-test-valgrind static-link-test install-test

$(CT_OUT) $(CT_ASAN_OUT):
	mkdir -p $@

$(CT_OUT)/%: $(CT_SRC)/%.c $(CT_HARNESS) $(CT_HEADERS) $(SO) $(SONAME_LINK) | $(CT_OUT)
	$(CC) $(CWARN) $(CFLAGS) $(CPPFLAGS) $< $(CT_HARNESS) -o $@ $(LINK_SO)

$(CT_ASAN_OUT)/%: $(CT_SRC)/%.c $(CT_HARNESS) $(CT_HEADERS) $(SO) $(SONAME_LINK) | $(CT_ASAN_OUT)
	$(CC) $(CWARN) $(CFLAGS) $(CT_SAN) $(CPPFLAGS) $< $(CT_HARNESS) -o $@ $(LINK_SO)

$(CT_OUT)/test_commands_static: $(CT_SRC)/test_commands.c $(CT_HARNESS) $(CT_HEADERS) $(STATIC) | $(CT_OUT)
	$(CC) $(CWARN) $(CFLAGS) $(CPPFLAGS) $< $(CT_HARNESS) -o $@ $(STATIC) $$(cat $(NATIVE_LIBS))

# The legacy server includes the header next to its own headers: it must stand alone
# (as C and as C++) and declare only the module's names, so nothing can collide.
c-header-test: $(HEADER)
	@set -e; \
	macros=$$(sed -nE 's/^#define ([A-Za-z_][A-Za-z0-9_]*).*/\1/p' $(HEADER) | grep -v '^RAIDA_' || true); \
	funcs=$$(sed -nE 's/^[A-Za-z_][A-Za-z0-9_ ]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/p' $(HEADER)); \
	strays=$$(echo "$$funcs" | grep -vE '^(cmd_[a-z_]+|send_validate_ticket_job|raida_healing_[a-z_]+)$$' || true); \
	if [ -n "$$macros$$strays" ]; then \
		echo "$(HEADER) declares names outside RAIDA_*, cmd_*, raida_healing_*:" $$macros $$strays; exit 1; fi; \
	for f in cmd_get_ticket cmd_validate_ticket cmd_find cmd_fix send_validate_ticket_job; do \
		echo "$$funcs" | grep -qx "$$f" || { echo "$(HEADER): no declaration of $$f found"; exit 1; }; done; \
	echo "$(HEADER): $$(echo $$funcs | wc -w) functions, all macros RAIDA_*"
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c $(HEADER)
	$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c++ $(HEADER)

c-test-build: $(addprefix $(CT_OUT)/,$(CT_TESTS))

# Each binary ends with "N passed, 0 failed" and exits non-zero on any failure.
c-test: c-test-build
	@for t in $(CT_TESTS); do echo "== $$t"; $(CT_OUT)/$$t || exit 1; done
	@echo "== test_dlopen.py"
	python3 $(CT_SRC)/test_dlopen.py $(SO)

c-test-asan: $(addprefix $(CT_ASAN_OUT)/,$(CT_TESTS))
	@for t in $(CT_TESTS); do echo "== $$t (ASan+UBSan)"; $(CT_ASAN_ENV) $(CT_ASAN_OUT)/$$t || exit 1; done

c-test-valgrind: c-test-build
	@for t in $(CT_TESTS); do echo "== $$t (valgrind)"; $(CT_VALGRIND) $(CT_OUT)/$$t || exit 1; done

static-link-test: $(CT_OUT)/test_commands_static
	@if readelf -d $< | grep -q 'libraida_healing'; then echo "$< still needs the .so"; exit 1; fi
	@echo "== test_commands (static archive)"
	$<

# Installs into throw-away prefixes the ways a packager and an operator do and checks every
# installed file: c_tests/test_install.sh (builds nothing itself: it installs with CARGO=false).
install-test: $(SO) $(STATIC)
	c_tests/test_install.sh "$(MAKE)" "$(CC)" "$(CWARN)" "$(SOVERSION)" "$(VERSION)"

TEST_TARGETS += c-header-test c-test c-test-asan c-test-valgrind static-link-test install-test
CLEAN_PATHS  += $(CT_OUT) $(CT_ASAN_OUT)
