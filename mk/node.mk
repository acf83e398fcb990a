# The test node (issue 4): build/raida_node, `make demo`, and the network tests.
#
#   make node       build/raida_node: the legacy server in miniature around the library
#   make demo       a 25-node loopback network heals a fracked coin (DEMO_BASE_PORT=N pins
#                   the ports to N..N+24; by default the OS picks free ones)
#   make node-test  unit tests of the node's config reader, framing and page files (ASan +
#                   UBSan), then the network tests against the node and against an ASan +
#                   UBSan build of it
#   make node-wan-test  the 25-node network behind delay proxies (5-250 ms one way): hedges
#                   per fix, fix time against the floor, a lazy-accept peer, a heal storm
#                   (c_tests/node/test_wan.py; about 10 s)
# See docs/node.md.

NODE_DIR      := c_tests/node
NODE_BIN      := $(BUILD)/raida_node
NODE_ASAN_BIN := $(BUILD)/raida_node_asan
NODE_UNIT     := $(BUILD)/node_unit_test
NODE_SRCS     := $(NODE_DIR)/node_config.c $(NODE_DIR)/node_wire.c $(NODE_DIR)/node_pages.c c_tests/host.c
NODE_HDRS     := $(wildcard $(NODE_DIR)/*.h) c_tests/host.h
NODE_SANITIZE := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
# Linked as the legacy server links the module (LINK_SO and SONAME_LINK in the Makefile).
NODE_UBSAN    := UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The node's leak check is off: it ends with _exit() under live connection threads (and
# LeakSanitizer's exit-time scan was seen to spin forever there). The unit test checks leaks.
NODE_SAN_ENV  := ASAN_OPTIONS=detect_leaks=0 $(NODE_UBSAN)
NODE_UNIT_ENV := ASAN_OPTIONS=detect_leaks=1:exitcode=1 $(NODE_UBSAN)

.PHONY: node demo node-test node-wan-test

node: $(NODE_BIN)

$(NODE_BIN): $(NODE_DIR)/node_main.c $(NODE_SRCS) $(NODE_HDRS) $(HEADER) $(SO) $(SONAME_LINK) | $(BUILD)
	$(CC) $(CWARN) $(CFLAGS) $(CPPFLAGS) -o $@ $(NODE_DIR)/node_main.c $(NODE_SRCS) $(LINK_SO)

$(NODE_ASAN_BIN): $(NODE_DIR)/node_main.c $(NODE_SRCS) $(NODE_HDRS) $(HEADER) $(SO) $(SONAME_LINK) | $(BUILD)
	$(CC) $(CWARN) $(NODE_SANITIZE) $(CPPFLAGS) -o $@ $(NODE_DIR)/node_main.c $(NODE_SRCS) $(LINK_SO)

# The unit test needs no library: the node's own pieces and the harness.
$(NODE_UNIT): $(NODE_DIR)/node_unit_test.c $(NODE_SRCS) $(NODE_HDRS) | $(BUILD)
	$(CC) $(CWARN) $(NODE_SANITIZE) $(CPPFLAGS) -o $@ $(NODE_DIR)/node_unit_test.c $(NODE_SRCS) -lpthread

demo: $(NODE_BIN)
	python3 $(NODE_DIR)/demo.py --node $(NODE_BIN)

node-test: $(NODE_BIN) $(NODE_ASAN_BIN) $(NODE_UNIT)
	$(NODE_UNIT_ENV) $(NODE_UNIT)
	python3 $(NODE_DIR)/test_network.py --node $(NODE_BIN)
	$(NODE_SAN_ENV) python3 $(NODE_DIR)/test_network.py --node $(NODE_ASAN_BIN)

node-wan-test: $(NODE_BIN)
	python3 $(NODE_DIR)/test_wan.py --node $(NODE_BIN)

TEST_TARGETS += node-test node-wan-test
# Python's byte code of netlab/raida_wire/wallet (when PYTHONDONTWRITEBYTECODE is unset).
CLEAN_PATHS  += $(NODE_DIR)/__pycache__
