# cmd_fix and send_validate_ticket_job through the C ABI (docs/fix.md).
#
#   make c-test-fix           build/fix/test_fix: the host harness (c_tests/host.c) plays the
#                             legacy server; scripted loopback peers run as threads of the test
#   make c-test-fix-valgrind  the same under valgrind memcheck (mk/hardening.mk puts it in
#                             `make test`)
#
# Linked as the server links the module (LINK_SO and SONAME_LINK in the Makefile).

FIX_CT_OUT    := $(BUILD)/fix
FIX_CT_BIN    := $(FIX_CT_OUT)/test_fix
FIX_CT_SRCS   := c_tests/test_fix.c c_tests/host.c c_tests/request.c
FIX_CT_HDRS   := c_tests/host.h c_tests/request.h c_tests/check.h $(HEADER)

.PHONY: c-test-fix c-test-fix-valgrind

$(FIX_CT_BIN): $(FIX_CT_SRCS) $(FIX_CT_HDRS) $(SO) $(SONAME_LINK)
	mkdir -p $(FIX_CT_OUT)
	$(CC) $(CWARN) $(CFLAGS) $(CPPFLAGS) $(FIX_CT_SRCS) -o $@ $(LINK_SO)

# Ends with "N passed, 0 failed"; exits non-zero on any failure.
c-test-fix: $(FIX_CT_BIN)
	$(FIX_CT_BIN)

c-test-fix-valgrind: $(FIX_CT_BIN)
	valgrind --tool=memcheck --quiet --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite --trace-children=yes \
		$(FIX_CT_BIN)

TEST_TARGETS += c-test-fix
CLEAN_PATHS  += $(FIX_CT_OUT)
