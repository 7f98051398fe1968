#!/bin/sh
# Prefix reuse and the device KV pool on a GPU artifact (runtime/cuda,
# docs/kv-cache.md), run by emulated_gpu_check.sh on the emulated driver.
# usage: kv_prefix_reuse_check.sh V4RUN GPU_ARTIFACT WORK_DIR
#  1. Under --swa-cache full, periodic:48 and zero, `generate --cache-dir`
#     twice: the second process reuses the first one's pages (64, 48, 16 of
#     the 70 prompt tokens: tiny-mixed pages are 16 tokens, a zero restore
#     runs 48 again) and prints the ids of a run without a cache.
#  2. `cache stats` reads the pages GPU artifacts wrote.
#  3. In one process, a session restoring another's pages through a device
#     page tier too small for all of them (demoted to the host tier, promoted
#     back on the hit) gives the same logits (1e-5) under zero; the host tier
#     is pinned (every byte it holds).
#  4. A session larger than the device KV pool is a one-line error.
set -eu
v4run=$1 gpu=$2 work=$3
mkdir -p "$work"
ids=$(seq 2 71 | tr '\n' ',' | sed 's/,$//')
generate() { "$v4run" generate "$gpu" --prompt-ids "$ids" -n 2 --max-context 128 "$@"; }
fail() { echo "kv_prefix_reuse_check: $*" >&2; exit 1; }

cold=$(generate | head -n 1)
[ -n "$cold" ] || fail "the run without a cache printed no ids"
echo "cold: $cold"
for spec in full:64 periodic:48:48 zero:16; do
  strategy=${spec%:*} reused=${spec##*:}
  dir=$work/cache-$(echo "$strategy" | tr : _)
  rm -rf "$dir"
  generate --cache-dir "$dir" --swa-cache "$strategy" > "$work/first.txt"
  generate --cache-dir "$dir" --swa-cache "$strategy" > "$work/second.txt"
  grep -qx 'prefix hit: 0 tokens reused' "$work/first.txt" || { cat "$work/first.txt"; fail "$strategy: first run reused pages"; }
  grep -qx "prefix hit: $reused tokens reused" "$work/second.txt" ||
    { cat "$work/second.txt"; fail "$strategy: second run did not reuse $reused tokens"; }
  grep -q '^kv cache: .*; store failures 0$' "$work/second.txt" ||
    { cat "$work/second.txt"; fail "$strategy: the GPU kv cache line lacks 'store failures 0'"; }
  [ "$(head -n 1 "$work/first.txt")" = "$cold" ] || fail "$strategy: first run's ids differ from the cold run's"
  [ "$(head -n 1 "$work/second.txt")" = "$cold" ] || fail "$strategy: restored run's ids differ from the cold run's"
  echo "$strategy: $(grep '^prefix hit' "$work/second.txt"), $(grep '^window rebuild' "$work/second.txt")"
done
"$v4run" cache verify "$work/cache-full" > "$work/stats.txt" &&
  grep -qx 'pages: 4' "$work/stats.txt" && grep -qx 'good: 4' "$work/stats.txt" ||
  { cat "$work/stats.txt"; fail "cache verify of the GPU pages"; }

# Zero pages are 2160 bytes here: a 5000-byte device tier holds 2 of the 4.
"$v4run" consistency "$gpu" --swa-cache zero --prompt-len 70 --decode 2 --max-context 128 \
  --cache-device-bytes 5000 --cache-host-bytes 1000000 > "$work/consistency.txt" ||
  { cat "$work/consistency.txt"; fail "restored logits differ"; }
cat "$work/consistency.txt"
grep -q '^prefix reuse: promotions [1-9]' "$work/consistency.txt" || fail "no page came back up from the host tier"
# The CUDA backend's host tier is pinned: every byte it holds (runtime/cuda/CudaPrefixCache.h).
grep -Eq '^prefix reuse: tier host \(pinned\): [0-9]+ pages, ([0-9]+) bytes \(\1 pinned\)' "$work/consistency.txt" ||
  fail "the host tier is not pinned, or holds pageable bytes"

if generate --device-kv-bytes 1000 > /dev/null 2> "$work/err.txt"; then fail "a 1000-byte KV pool was accepted"; fi
grep -q 'more than the whole device KV pool' "$work/err.txt" || { cat "$work/err.txt"; fail "pool error"; }
[ "$(wc -l < "$work/err.txt")" -eq 1 ] || { cat "$work/err.txt"; fail "the pool error is not one line"; }
echo "kv prefix reuse check passed"
