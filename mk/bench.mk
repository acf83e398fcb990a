# Benchmarks: one table measured through the C ABI. BENCHMARKS.md explains every row.
#
## make bench              build/bench against the release library, then run it, then the hostile-client
##                          figures (benches/hostile.rs) (a few minutes; not a test)
## make bench-build        only build build/bench, so the bench cannot rot (make test)
#
# `cargo bench` runs the criterion benches of the safe core (benches/core.rs).

BENCH_SRCS := bench/bench.c c_tests/fake_peer.c c_tests/host.c c_tests/request.c
$(eval $(call c_program,bench,$(BENCH_SRCS)))

.PHONY: bench bench-build

bench-build: $(call bin,bench)

bench: $(call bin,bench)
	$(call bin,bench)
	$(CARGO) bench --bench hostile --locked

TEST_TARGETS += bench-build
