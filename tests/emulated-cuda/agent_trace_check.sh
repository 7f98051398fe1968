#!/bin/sh
# v4bench-agent (bench/agent_trace.cpp) on a GPU artifact, run by
# emulated_gpu_check.sh on the emulated driver: a few turns through the CUDA
# backend with a device page tier of one page, a pinned host tier of two and
# the disk. The cached replay must skip prefill tokens, end with the same ids
# as the replay without a cache (the bench exits 1 otherwise), and show pages
# in the device tier and pinned bytes in the host tier.
# usage: agent_trace_check.sh V4BENCH_AGENT GPU_ARTIFACT WORK_DIR
set -eu
bench=$1 gpu=$2 work=$3
mkdir -p "$work"
fail() { echo "agent_trace_check: $*" >&2; exit 1; }

# tiny-mixed full pages are 26736 payload bytes (16 tokens).
"$bench" "$gpu" --turns 3 --append 40 --decode 2 --swa-cache full --cache-dir "$work/cache" \
  --cache-device-bytes 30000 --cache-host-bytes 60000 > "$work/out.txt" 2>&1 ||
  { cat "$work/out.txt"; fail "the bench failed (or the cached replay's ids differ)"; }
cat "$work/out.txt"
grep -q '^v4bench-agent: .*(target sm_90a, CUDA backend)$' "$work/out.txt" || fail "not run on the CUDA backend"
json=$(tail -n 1 "$work/out.txt")
saved=$(echo "$json" | sed -n 's/.*"disk_cache": {[^}]*"tokens_saved": \([0-9]*\).*/\1/p')
[ -n "$saved" ] && [ "$saved" -gt 0 ] || fail "no prefill tokens saved ($saved)"
echo "$json" | grep -q '"speedup": [0-9.]*, "same_final_ids": true, "strategies"' || fail "final ids differ"
line=$(grep '^full  *tiers: ' "$work/out.txt") || fail "no tier line"
echo "$line" | grep -Eq 'device [1-9][0-9]* pages' || fail "the device tier holds no page: $line"
echo "$line" | grep -Eq 'host \(pinned\) [1-9][0-9]* pages [0-9]+ bytes \([1-9][0-9]* pinned\)' ||
  fail "the host tier is not pinned or empty: $line"
echo "$line" | grep -Eq 'disk [1-9][0-9]* pages' || fail "the disk tier holds no page: $line"
echo "agent trace check passed: $saved prefill tokens saved"
