# cmd_fix and send_validate_ticket_job through the C ABI (docs/fix.md).
#
#   make c-test-fix           build/fix/test_fix: the host harness (c_tests/host.c) plays the
#                             legacy server; scripted loopback peers run as threads of the test
#   make c-test-fix-valgrind  the same under valgrind memcheck (not part of `make test`)
#
# Linked as the server links the module: through the header, -lraida_healing, no
# -rdynamic. The library's soname is libraida_healing.so.0, so the rpath names a folder
# holding that name as a link to the release build (as mk/ctests.mk does).

FIX_CT_OUT    := $(BUILD)/fix
FIX_CT_BIN    := $(FIX_CT_OUT)/test_fix
FIX_CT_LIBDIR := $(BUILD)/fix-lib
FIX_CT_SONAME := $(FIX_CT_LIBDIR)/libraida_healing.so.$(SOVERSION)
FIX_CT_SRCS   := c_tests/test_fix.c c_tests/host.c c_tests/request.c
FIX_CT_HDRS   := c_tests/host.h c_tests/request.h c_tests/check.h $(HEADER)
FIX_CT_LINK   := -L$(LIB_DIR) -lraida_healing -Wl,-rpath,$(abspath $(FIX_CT_LIBDIR)) -lpthread

.PHONY: c-test-fix c-test-fix-valgrind

$(FIX_CT_SONAME): $(SO)
	mkdir -p $(FIX_CT_LIBDIR)
	ln -sfn $(abspath $(SO)) $@

$(FIX_CT_BIN): $(FIX_CT_SRCS) $(FIX_CT_HDRS) $(SO) $(FIX_CT_SONAME)
	mkdir -p $(FIX_CT_OUT)
	$(CC) $(CWARN) $(CFLAGS) $(CPPFLAGS) $(FIX_CT_SRCS) -o $@ $(FIX_CT_LINK)

# Ends with "N passed, 0 failed"; exits non-zero on any failure.
c-test-fix: $(FIX_CT_BIN)
	$(FIX_CT_BIN)

c-test-fix-valgrind: $(FIX_CT_BIN)
	valgrind --tool=memcheck --quiet --error-exitcode=1 --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite --trace-children=yes \
		$(FIX_CT_BIN)

TEST_TARGETS += c-test-fix
CLEAN_PATHS  += $(FIX_CT_OUT) $(FIX_CT_LIBDIR)
