# Fuzzing (the fuzz crate is fuzz/). docs/hardening.md explains every target and lists the
# sanitizer and memcheck runs of the other fragments (c-test-asan, c-test-fix-asan,
# node-test, node-valgrind, ...). The Rust stress and attack tests (tests/stress.rs,
# tests/peer_attacks.rs) run in `cargo test`.
#
## make fuzz               each fuzz target for FUZZ_SECONDS (default 60; make fuzz FUZZ_SECONDS=300)
## make fuzz-smoke         each fuzz target for FUZZ_SMOKE_SECONDS (default 7) (make test)
## make fuzz-merge         adds the inputs of build/fuzz/corpus that found new coverage to fuzz/corpus
## make fuzz-build         only build the fuzz binaries (fuzz/target)
## make fuzz-clippy        clippy over the fuzz crate

FUZZ_DIR      := fuzz
# Every [[bin]] of fuzz/Cargo.toml is a fuzz target: a new one is listed there only.
FUZZ_TARGETS  := $(shell sed -n '/^\[\[bin\]\]/,/^name/s/^name = "\(.*\)"$$/\1/p' $(FUZZ_DIR)/Cargo.toml)
FUZZ_SECONDS  ?= 60
FUZZ_SMOKE_SECONDS ?= 7
FUZZ_TRIPLE   := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
FUZZ_BIN_DIR  := $(FUZZ_DIR)/target/$(FUZZ_TRIPLE)/release
FUZZ_OUT      := $(BUILD)/fuzz
# libFuzzer's coverage instrumentation on stable Rust: the flags cargo-fuzz passes with
# `--sanitizer none` (SanitizerCoverage: 8-bit counters, PC table, comparison tracing).
# `--target` keeps them off build scripts and proc macros.
FUZZ_RUSTFLAGS := -Cpasses=sancov-module \
	-Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
	-Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares \
	--cfg fuzzing

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-merge fuzz-clippy

# Not --locked: fuzz/Cargo.lock pins what it lists, and cargo adds (without upgrading
# anything) whatever a new dependency of the main crate needs.
fuzz-build:
	cd $(FUZZ_DIR) && CARGO_TARGET_DIR=target RUSTFLAGS="$(FUZZ_RUSTFLAGS)" \
		$(CARGO) build --release --target $(FUZZ_TRIPLE) --bins

fuzz: fuzz-build
	FUZZ_BIN_DIR=$(FUZZ_BIN_DIR) $(FUZZ_DIR)/run.sh $(FUZZ_SECONDS) $(FUZZ_OUT) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	FUZZ_BIN_DIR=$(FUZZ_BIN_DIR) $(FUZZ_DIR)/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_OUT)/smoke $(FUZZ_TARGETS)

fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		if [ -d $(FUZZ_OUT)/corpus/$$t ]; then \
			$(FUZZ_BIN_DIR)/$$t -merge=1 -max_len=21000 $(FUZZ_DIR)/corpus/$$t $(FUZZ_OUT)/corpus/$$t \
				2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || exit 1; \
		fi; \
	done

fuzz-clippy:
	cd $(FUZZ_DIR) && CARGO_TARGET_DIR=target $(CARGO) clippy --release --bins -- -D warnings

TEST_TARGETS += fuzz-smoke
CLEAN_PATHS  += $(FUZZ_DIR)/target
