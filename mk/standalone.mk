# Standalone mode: the library in a process with no RAIDA server (docs/standalone.md
# describes the exports, the store's guarantees and the tool). The Rust unit tests of
# src/pagefile.rs and src/config_file.rs run in `cargo-test`.
#
## make standalone-test    the .so with no server, page-file folders, the folder lock, tools/raida_healing.py, the make test runner (make test)

SA_SRC := tools/tests
# host_present links the .so as the legacy server does.
$(eval $(call c_program,host_present,$(SA_SRC)/host_present.c))
# A stand-in for the legacy server's symbols, loaded into the Python process.
SA_FAKE_ABI_SO := $(BUILD)/standalone/libfake_abi.so

.PHONY: standalone-test

$(SA_FAKE_ABI_SO): $(SA_SRC)/fake_abi.c
	@mkdir -p $(@D)
	$(CC) $(CWARN) $(CFLAGS) -shared -fPIC $< -o $@

standalone-test: $(SO) $(call bin,host_present) $(SA_FAKE_ABI_SO)
	PYTHONDONTWRITEBYTECODE=1 python3 $(SA_SRC)/test_standalone.py --lib $(SO) \
		--host-present $(call bin,host_present) --fake-abi $(SA_FAKE_ABI_SO)
	PYTHONDONTWRITEBYTECODE=1 python3 $(SA_SRC)/test_run_suites.py

TEST_TARGETS += standalone-test
CLEAN_PATHS  += tools/__pycache__ tools/tests/__pycache__
