#!/bin/sh
# The first GPU session, in ONE device call: builds nothing (v4run, the
# probes, the tests and the artifacts come from bench/prepare_gpu_session.sh,
# carried), runs v4probe-primitives FIRST (each wgmma / cp.async fact the
# host emulation assumes, device vs emulation: tests/gpu/probes; a FAIL names
# the fact), then the runtime's toy test, the C API's and fork's GPU tests
# (the emulated-driver tests on the real driver), every check of
# tests/gpu/checks.list (verify fp32/bf16, compare, consistency incl. graph
# vs launches, bench; each wgmma row beside its wmma twin), then
# bench/vs_hf.sh and the agent trace, and prints one table last.
# usage: bench/gpu_session.sh [SESSION=build-h8/gpu-session.txz]           (or .tgz, or the unpacked directory)
#        bench/gpu_session.sh SESSION-issue6.tgz issue6
#   issue6: run bench/issue6.sh on the issue-6 bundle instead (issue 6's
#   benchmarks and the HF side-by-side, < 9 minutes; prepare_gpu_session.sh
#   writes its artifacts into the second bundle, SESSION-issue6.tgz).
# Logs: $OUT/gpu_session.log (every check's output), $OUT/probe.log and $OUT/vs_hf/.
# A check that fails with a CUDA error runs again with V4_CUDA_SYNC=1, so
# the log names the kernel that failed.
set -u
dir=${1:-build-h8/gpu-session.txz}
root=$(cd "$(dirname "$0")/.." && pwd)
# Bundles: .txz (xz; python3's tarfile where the machine has no xz) or .tgz.
case $dir in
*.tgz | *.txz)
  mkdir -p /tmp/v4-gpu-session
  case $dir in
  *.tgz) tar -C /tmp/v4-gpu-session -xzf "$dir" ;;
  *) if command -v xz > /dev/null; then
    tar -C /tmp/v4-gpu-session -xJf "$dir"
  else
    python3 -c 'import sys, tarfile
tarfile.open(sys.argv[1]).extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' \
      "$dir" /tmp/v4-gpu-session
  fi ;;
  esac || { echo "gpu_session: cannot unpack $dir"; exit 1; }
  dir=/tmp/v4-gpu-session/$(basename "$dir" | sed 's/\.t[gx]z$//')
  ;;
esac
if [ "${2:-}" = issue6 ]; then
  [ -d "$dir/work/issue6" ] ||
    { echo "gpu_session: $dir has no work/issue6: pass the issue-6 bundle (SESSION-issue6.tgz)"; exit 1; }
  exec sh "$root/bench/issue6.sh" "$dir"
fi
v4run=$dir/bin/v4run
out=${OUT:-$dir/out}
mkdir -p "$out"
log=$out/gpu_session.log
: > "$log"
table=$out/table.txt
: > "$table"

row() { printf '%-30s %-7s %6s  %s\n' "$1" "$2" "$3" "$4" >> "$table"; }
row check status secs result

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"

# The primitives first: one line per fact (PASS / FAIL: the first mismatch,
# expected vs got / SKIPPED without a device), each a row of the table. The
# first FAIL is the one to read (bench/README.md "v4probe-primitives").
probe_log=$out/probe.log
start=$(date +%s)
if [ -x "$dir/bin/v4probe-primitives" ]; then
  env -u LD_LIBRARY_PATH timeout 180 "$dir/bin/v4probe-primitives" --timeout 20 > "$probe_log" 2>&1
  status=$?
  grep -v '^{' "$probe_log"
  { echo "=================== v4probe-primitives: status $status in $(($(date +%s) - start))s"; cat "$probe_log"; } >> "$log"
  grep -E '^(fact|tile) ' "$probe_log" | while IFS= read -r line; do
    id=$(echo "$line" | cut -d' ' -f2)
    name=$(echo "$line" | cut -d' ' -f3 | tr -d :)
    verdict=$(echo "$line" | sed -E 's/^[^:]*: ([A-Z]+).*/\1/')
    case $verdict in PASS) verdict=ok ;; SKIPPED) verdict=skip ;; *) verdict=FAIL ;; esac
    row "probe.$id.$name" "$verdict" - "$(echo "$line" | sed -E 's/^[^:]*: [A-Z]+:? ?//' | cut -c1-150)"
  done
  if ! grep -q '^{"probe"' "$probe_log"; then
    row probe FAIL $(($(date +%s) - start)) "v4probe-primitives ended with status $status before its JSON line ($probe_log)"
  fi
else
  row probe FAIL 0 "no bin/v4probe-primitives in the bundle (bench/prepare_gpu_session.sh)"
fi

# (v4run's own status, not tee's: a pipeline's status is its last command's.)
"$v4run" device --target sm_90a > "$out/.device.log" 2>&1
status=$?
tee -a "$log" < "$out/.device.log"
if [ $status -ne 0 ]; then
  echo "gpu_session: no usable device (v4run device: status $status); stopping"
  exit 1
fi

# The runtime alone first: a toy artifact whose kernels the test recomputes.
start=$(date +%s)
V4_TEST_CUBIN=$dir/bin/RuntimeTestKernels.sm_90a.cubin timeout 120 "$dir/bin/v4rt_cuda_device_tests" > "$out/.check.log" 2>&1
status=$?
{ echo "=================== runtime.toy (v4rt_cuda_device_tests): status $status"; cat "$out/.check.log"; } >> "$log"
row runtime.toy "$([ $status -eq 0 ] && echo ok || echo FAIL)" $(($(date +%s) - start)) \
  "$(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$out/.check.log" | tr -s ' ' | paste -sd ';' -)"

# gtest_check NAME SECONDS COMMAND...: a gtest binary on the REAL driver (no
# LD_LIBRARY_PATH: the emulated-driver tests run unchanged), one row.
gtest_check() {
  name=$1 limit=$2
  shift 2
  start=$(date +%s)
  env -u LD_LIBRARY_PATH timeout "$limit" "$@" > "$out/.check.log" 2>&1
  status=$?
  secs=$(($(date +%s) - start))
  case $status in 0) verdict=ok ;; 124) verdict=timeout ;; *) verdict=FAIL ;; esac
  { echo "=================== $name ($*): $verdict (status $status) in ${secs}s"; cat "$out/.check.log"; } >> "$log"
  row "$name" "$verdict" "$secs" \
    "$(grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \] [A-Za-z]' "$out/.check.log" | tr -s ' ' | paste -sd ';' - | cut -c1-150)"
  echo "gpu_session: $name $verdict (${secs}s)"
}
# The C API over the CUDA backend (runtime/api/ApiCudaTest.cpp: GPU vs CPU
# artifacts of tiny-mixed) and fork / truncate of CUDA sessions
# (runtime/cuda/CudaSessionForkTest.cpp), with the artifacts carried.
gtest_check api.cuda 120 env V4RT_API_TEST_DIR="$dir/work/api" "$dir/bin/v4rt_api_emulated_tests"
gtest_check runtime.fork 120 env V4RT_FORK_TEST_ARTIFACT="$dir/work/tiny-mixed-sm_90a-fp32.v4a" \
  "$dir/bin/v4rt_cuda_fork_tests"

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
  for (name in verdict) if (name ~ /-wgmma$/ && name !~ /^probe\./) {
    twin = name; sub(/-wgmma$/, "", twin)
    printf "wgmma: %-34s %-7s (wmma twin %s: %s)\n", name, verdict[name], twin, (twin in verdict) ? verdict[twin] : "not run"
  } }' "$table" | sort
if [ -f "$agent" ]; then
  echo
  echo "==================== agent trace on the GPU ($agent)"
  sed -n '/^swa-cache /,$p' "$agent"
fi
