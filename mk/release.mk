# What the release library must not hold: the test doubles that the `testing` cargo
# feature adds for tests, benches and the fuzz crate (an in-memory store, a failing
# random source, a ticket pool's fake clock and ids, the forced panic per export).
#
## make check-release-symbols  nm on the release .so and .a finds no test double (make test)

# Names (demangled, as nm -C prints them) that only the `testing` feature defines.
TEST_DOUBLE_SYMBOLS := ::testing::|MemoryStore|MemoryPage|record_range|FAIL_FOR_TESTS|PANIC_AFTER_BODY

.PHONY: check-release-symbols

check-release-symbols: $(SO) $(STATIC)
	@for lib in $(SO) $(STATIC); do \
		nm -C $$lib 2>/dev/null > $(BUILD)/release-symbols.txt; \
		grep -q 'raida_healing::' $(BUILD)/release-symbols.txt || \
			{ echo "$$lib: nm shows no raida_healing symbol, so this check would prove nothing"; exit 1; }; \
		if grep -E '$(TEST_DOUBLE_SYMBOLS)' $(BUILD)/release-symbols.txt; then \
			echo "$$lib holds the test doubles above: the release build must not enable the testing feature"; exit 1; \
		fi; \
	done
	@echo "release library: no test double in $(SO) or $(STATIC)"

TEST_TARGETS += check-release-symbols

# The release tarball (`make dist`, in the Makefile) from a reader's side: mk/dist_test.sh.
#
## make dist-test          make dist; the tarball (sha256 ok, Cargo.lock, nothing vendored) unpacked passes make check-abi with no git and cargo offline, its .so byte for byte this one (make test)

.PHONY: dist-test

dist-test: $(SO)
	bash mk/dist_test.sh "$(MAKE)" "$(DIST_NAME)"

TEST_TARGETS += dist-test
