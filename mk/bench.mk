# Benchmarks: `make bench` prints one table measured through the C ABI.
#
#   make bench        release library + build/bench, then run it (about a minute; not a test)
#   make bench-build  only build build/bench; part of `make test` so the bench cannot rot
#   cargo bench       criterion benches of the safe core (benches/core.rs)
#
# BENCHMARKS.md explains every row of the table.

BENCH_BIN     := $(BUILD)/bench
BENCH_SRCS    := bench/bench.c bench/fake_peers.c c_tests/host.c c_tests/request.c
BENCH_HDRS    := bench/fake_peers.h c_tests/host.h c_tests/request.h $(HEADER)
BENCH_CFLAGS  := -O2 -g

.PHONY: bench bench-build

bench-build: $(BENCH_BIN)

$(BENCH_BIN): $(BENCH_SRCS) $(BENCH_HDRS) $(SO) $(SONAME_LINK) | $(BUILD)
	$(CC) $(CWARN) $(BENCH_CFLAGS) $(CPPFLAGS) -o $@ $(BENCH_SRCS) $(LINK_SO)

bench: $(BENCH_BIN)
	$(BENCH_BIN)

TEST_TARGETS += bench-build
CLEAN_PATHS  += $(BENCH_BIN)
