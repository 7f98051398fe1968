#!/bin/sh
# The first GPU session, in ONE device call: builds nothing (v4run and the
# artifacts come from bench/prepare_gpu_session.sh, carried), runs every check
# of tests/gpu/checks.list (verify fp32/bf16, compare, consistency incl. graph
# vs launches, bench; each bf16 wgmma row beside its wmma twin), then
# bench/vs_hf.sh, and prints one table last.
# usage: bench/gpu_session.sh [SESSION=build-h8/gpu-session.tgz] [issue6]   (or the unpacked directory)
#   issue6: run bench/issue6.sh on the bundle instead (issue 6's benchmarks and
#   the HF side-by-side, < 9 minutes; its artifacts are in the same bundle).
# Logs: $OUT/gpu_session.log (every check's output) and $OUT/vs_hf/.
# A check that fails with a CUDA error runs again with V4_CUDA_SYNC=1, so
# the log names the kernel that failed.
set -u
dir=${1:-build-h8/gpu-session.tgz}
root=$(cd "$(dirname "$0")/.." && pwd)
case $dir in
*.tgz)
  mkdir -p /tmp/v4-gpu-session && tar -C /tmp/v4-gpu-session -xzf "$dir" || { echo "gpu_session: cannot unpack $dir"; exit 1; }
  dir=/tmp/v4-gpu-session/$(basename "$dir" .tgz)
  ;;
esac
if [ "${2:-}" = issue6 ]; then
  exec sh "$root/bench/issue6.sh" "$dir"
fi
v4run=$dir/bin/v4run
out=${OUT:-$dir/out}
mkdir -p "$out"
log=$out/gpu_session.log
: > "$log"
table=$out/table.txt
: > "$table"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
if ! "$v4run" device --target sm_90a 2>&1 | tee -a "$log"; then
  echo "gpu_session: no usable device; stopping"
  exit 1
fi

row() { printf '%-30s %-7s %6s  %s\n' "$1" "$2" "$3" "$4" >> "$table"; }
row check status secs result

# The runtime alone first: a toy artifact whose kernels the test recomputes.
start=$(date +%s)
V4_TEST_CUBIN=$dir/bin/RuntimeTestKernels.sm_90a.cubin timeout 120 "$dir/bin/v4rt_cuda_device_tests" > "$out/.check.log" 2>&1
status=$?
{ echo "=================== runtime.toy (v4rt_cuda_device_tests): status $status"; cat "$out/.check.log"; } >> "$log"
row runtime.toy "$([ $status -eq 0 ] && echo ok || echo FAIL)" $(($(date +%s) - start)) \
  "$(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/.check.log" | tr -s ' ' | paste -sd ';' -)"

# summary LOG: the line that says how a check went.
summary() {
  grep -E '^(verify: prefill|consistency: (chunked|token|graph)|compare: [0-9]+ steps|decode: |SKIPPED|gpu_check:|v4run: error)' "$1" |
    sed 's/^consistency: //' | tr -s ' ' | paste -sd ';' - | cut -c1-150
}

grep -v '^#' "$root/tests/gpu/checks.list" | {
  while read -r name check args; do
    [ -n "$name" ] || continue
    limit=150
    case $name in *v4-flash*) limit=300 ;; esac
    start=$(date +%s)
    one=$out/.check.log
    # shellcheck disable=SC2086 # args are words
    timeout $limit sh "$root/tests/gpu/gpu_check.sh" - "$v4run" "$dir/work" "$check" $args > "$one" 2>&1
    status=$?
    if [ $status -ne 0 ] && grep 'CUDA_ERROR' "$one" | grep -qv 'OUT_OF_MEMORY'; then
      echo "-- $name failed with a CUDA error: again with V4_CUDA_SYNC=1 (one sync per launch)" >> "$one"
      # shellcheck disable=SC2086
      V4_CUDA_SYNC=1 timeout $limit sh "$root/tests/gpu/gpu_check.sh" - "$v4run" "$dir/work" "$check" $args >> "$one" 2>&1
    fi
    secs=$(($(date +%s) - start))
    case $status in 0) verdict=ok ;; 77) verdict=skip ;; 124) verdict=timeout ;; *) verdict=FAIL ;; esac
    { echo "=================== $name ($check $args): $verdict in ${secs}s"; cat "$one"; } >> "$log"
    row "$name" "$verdict" "$secs" "$(summary "$one")"
    echo "gpu_session: $name $verdict (${secs}s)"
  done
}
rm -f "$out/.check.log"

start=$(date +%s)
OUT=$out timeout 400 sh "$root/bench/vs_hf.sh" "$v4run" "$dir/work/v4-flash-2layer-sm_90a-bf16.v4a" 4096 32 \
  > "$out/vs_hf.log" 2>&1
status=$?
secs=$(($(date +%s) - start))
{ echo "=================== vs_hf: status $status in ${secs}s"; cat "$out/vs_hf.log"; } >> "$log"
rm -f "$out/vs_hf.log"
row "vs_hf.v4-flash-2layer.bf16" "$([ $status -eq 0 ] && echo ok || echo FAIL)" "$secs" \
  "$(grep -E '^(prefill tokens/s|decode ms/token|measured)' "$log" | tail -3 | tr -s ' ' | paste -sd ';' -)"

# Issue 5: the agent trace on the GPU (bench/agent_trace.cpp): 8 turns of
# 2048 new tokens, cache vs none, through device (16 MiB) -> pinned host
# (16 MiB) -> disk tiers; exits 1 if the cached replay's ids differ.
agent=$out/agent_trace.log
if [ -x "$dir/bin/v4bench-agent" ]; then
  start=$(date +%s)
  timeout 300 "$dir/bin/v4bench-agent" "$dir/work/v4-flash-2layer-sm_90a-bf16.v4a" --turns 8 --append 2048 --decode 4 \
    --swa-cache full,zero --cache-dir "$dir/work/agent-cache" --cache-device-bytes 16777216 \
    --cache-host-bytes 16777216 > "$agent" 2>&1
  status=$?
  secs=$(($(date +%s) - start))
  { echo "=================== agent_trace: status $status in ${secs}s"; cat "$agent"; } >> "$log"
  row "agent_trace.v4-flash-2layer" "$([ $status -eq 0 ] && echo ok || echo FAIL)" "$secs" \
    "$(grep -E '^(full|zero) ' "$agent" | grep -v tiers | tr -s ' ' | paste -sd ';' - | cut -c1-150)"
else
  row "agent_trace" FAIL 0 "no bin/v4bench-agent in the bundle (bench/prepare_gpu_session.sh)"
fi

echo
echo "==================== GPU session summary (logs: $log)"
cat "$table"
# The wgmma rows (--tensor-cores wgmma, opt-in) beside their wmma twins: the
# same verdict means the GEMM variant is not the cause; wgmma alone failing
# points at DenseWgmma.cuh / MoeWgmma.cuh (compare names the first bad launch).
awk '{ verdict[$1] = $2 } END {
  for (name in verdict) if (name ~ /-wgmma$/) {
    twin = name; sub(/-wgmma$/, "", twin)
    printf "wgmma: %-34s %-7s (wmma twin %s: %s)\n", name, verdict[name], twin, (twin in verdict) ? verdict[twin] : "not run"
  } }' "$table" | sort
if [ -f "$agent" ]; then
  echo
  echo "==================== agent trace on the GPU ($agent)"
  sed -n '/^swa-cache /,$p' "$agent"
fi
