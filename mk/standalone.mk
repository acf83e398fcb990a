# Standalone mode: the library in a process with no RAIDA server.
#
#   make standalone-test   Python (stdlib) tests: dlopen the release .so with no server and
#                          run the handlers on temporary page-file folders, fix against
#                          loopback fake peers, kill -9, the folder lock, tools/raida_healing.py
#
# The Rust unit tests of src/pagefile.rs and src/config_file.rs run in `cargo-test`.
# docs/standalone.md describes the exports, the store's guarantees and the tool.

SA_SRC         := tools/tests
SA_OUT         := $(BUILD)/standalone
# host_present links the .so as the legacy server does (LINK_SO and SONAME_LINK in the
# Makefile).
SA_HOST_BIN    := $(SA_OUT)/host_present
SA_FAKE_ABI_SO := $(SA_OUT)/libfake_abi.so

.PHONY: standalone-test

$(SA_OUT):
	mkdir -p $@

$(SA_HOST_BIN): $(SA_SRC)/host_present.c $(HEADER) $(SO) $(SONAME_LINK) | $(SA_OUT)
	$(CC) $(CWARN) $(CFLAGS) $(CPPFLAGS) $< -o $@ $(LINK_SO)

$(SA_FAKE_ABI_SO): $(SA_SRC)/fake_abi.c | $(SA_OUT)
	$(CC) $(CWARN) $(CFLAGS) -shared -fPIC $< -o $@

standalone-test: $(SO) $(SA_HOST_BIN) $(SA_FAKE_ABI_SO)
	PYTHONDONTWRITEBYTECODE=1 python3 $(SA_SRC)/test_standalone.py --lib $(SO) \
		--host-present $(SA_HOST_BIN) --fake-abi $(SA_FAKE_ABI_SO)

TEST_TARGETS += standalone-test
CLEAN_PATHS  += tools/__pycache__ tools/tests/__pycache__
