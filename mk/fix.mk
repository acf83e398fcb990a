# cmd_fix and send_validate_ticket_job through the C ABI (docs/fix.md): in build/test_fix the
# host harness (c_tests/host.c) plays the legacy server; scripted loopback peers
# (c_tests/fake_peer.c) run as threads of the test. Each run ends with "N passed, 0 failed" and exits non-zero on failure.
#
## make c-test-fix         build/test_fix (make test)
## make c-test-fix-asan    the same built with ASan+UBSan (make test)
## make c-test-fix-valgrind the plain build under valgrind memcheck (make test)

FIX_SRCS := c_tests/test_fix.c c_tests/fake_peer.c c_tests/host.c c_tests/request.c
$(eval $(call c_program,test_fix,$(FIX_SRCS)))

.PHONY: c-test-fix c-test-fix-asan c-test-fix-valgrind

c-test-fix: $(call bin,test_fix)
	$(call bin,test_fix)

c-test-fix-asan: $(call asan_bin,test_fix)
	$(SAN_ENV) $(call asan_bin,test_fix)

c-test-fix-valgrind: $(call bin,test_fix)
	$(VALGRIND) $(call bin,test_fix)

TEST_TARGETS += c-test-fix c-test-fix-asan c-test-fix-valgrind
