#!/usr/bin/env bash
# Runs fuzz targets for a fixed time each and prints one line per target.
#
#   fuzz/run.sh SECONDS_PER_TARGET OUT_DIR TARGET...
#
# Seeds come from fuzz/corpus/<target> (read only); inputs that add coverage go to
# OUT_DIR/corpus/<target>, a crashing input to OUT_DIR/artifacts/<target>/, libFuzzer's
# log to OUT_DIR/logs/<target>.log. Exits 1 on the first target that fails, after
# printing the end of its log and the input that reproduces the failure.
set -euo pipefail

seconds=$1
out=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=${FUZZ_BIN_DIR:?FUZZ_BIN_DIR names the folder of the fuzz binaries}

total_runs=0
for target in "$@"; do
    corpus="$out/corpus/$target"
    artifacts="$out/artifacts/$target"
    log="$out/logs/$target.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    status=0
    # -timeout: one input running 10 s is a hang, reported like a crash.
    # -max_len: room for a 4096-coin peer answer (32 + 20482 bytes) and long requests.
    "$bin_dir/$target" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -max_len=21000 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "$corpus" "$here/corpus/$target" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)
    if [ "$status" -ne 0 ]; then
        echo "fuzz $target: FAILED (exit $status) after ${runs:-?} runs"
        tail -n 40 "$log"
        echo "reproduce: $bin_dir/$target $(ls -t "$artifacts"/* 2>/dev/null | head -n 1)"
        exit 1
    fi
    total_runs=$((total_runs + ${runs:-0}))
    echo "fuzz $target: ${runs} runs in ${seconds} s (${rate}/s), ${cov}, corpus $(find "$corpus" "$here/corpus/$target" -type f | wc -l) inputs, no failure"
done
echo "fuzz: $total_runs runs over $# targets, no failure"
