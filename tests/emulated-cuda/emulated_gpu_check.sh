#!/bin/sh
# One check of a GPU artifact on the emulated CUDA driver (CPU only).
# usage: emulated_gpu_check.sh V4C V4RUN DRIVER_DIR WORK_DIR fast|slow CHECK ARGUMENT...
#   DRIVER_DIR: the folder holding the emulated libcuda.so.1
#   verify CASE PRECISION TOLERANCE: v4run verify vs the case's golden logits
#   compare CASE PROMPT_IDS DECODE [PRECISION TOLERANCE [TENSOR_CORES]]: every launch vs the
#     CPU artifact (fp32, or fp8 for an fp8 GPU artifact: the same quantized steps; default:
#     an fp32 GPU artifact within 1e-4; TENSOR_CORES wgmma compiles with --tensor-cores
#     wgmma, its GEMMs on the emulated warpgroup MMA, fp8 linears on its e4m3 form)
#   consistency CASE PRECISION PROMPT_LEN: prefill vs chunked vs decode, graph vs launches
#   interleave CASE: 4 sessions through a device KV pool of 2 (preempted, swapped back) vs each alone
#   prefix-reuse CASE: --cache-dir reuse under full / periodic / zero, tiers, pool errors
#     (kv_prefix_reuse_check.sh)
#   batch CASE PROMPT_LEN DECODE: continuous batching (--decode-batch 1,4): 3 sessions
#     decoded together vs each alone, same greedy tokens and logits within 1e-5
#   agent-trace CASE V4BENCH_AGENT: the agent-trace bench on the CUDA backend with
#     device -> pinned host -> disk tiers (agent_trace_check.sh)
# V4_EMULATED_GPU_SLOW=1 runs the checks marked slow (the bf16 golden verify,
# which the tiny model misses: see README.md); without it they exit 77
# (ctest: skipped) saying so.
set -eu
v4c=$1 v4run=$2 driver=$3 work=$4 speed=$5 check=$6
shift 6
if [ "$speed" = slow ] && [ "${V4_EMULATED_GPU_SLOW:-0}" != 1 ]; then
  echo "SKIPPED: slow emulated-GPU check; run with V4_EMULATED_GPU_SLOW=1"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
conformance=$root/tests/conformance
configs=$root/tests/gpu/configs # config-only cases: dummy weights (tests/gpu/configs/README.md)
target=sm_90a
mkdir -p "$work"

# case_source CASE: the compile arguments naming the case's weights (a
# conformance checkpoint, or a config-only case with dummy weights).
case_source() {
  if [ -d "$conformance/$1" ]; then echo "$conformance/$1"; else echo "$configs/$1 --weights dummy"; fi
}

# gpu_artifact CASE PRECISION [DECODE_BATCH [TENSOR_CORES]]: compiles the case
# for $target keeping the CUDA source, builds its host module; prints the
# artifact's path.
gpu_artifact() {
  batches=${3:-1} cores=${4:-wmma}
  out=$work/$1-$target-$2.v4a
  [ "$cores" = wmma ] || out=$work/$1-$target-$2-$cores.v4a
  [ "$batches" = 1 ] || out=${out%.v4a}-b$(echo "$batches" | tr , _).v4a
  "$v4c" compile $(case_source "$1") --target $target --precision "$2" --decode-batch "$batches" \
    --tensor-cores "$cores" --keep-cuda-source "$out.src" -o "$out" > "$out.log" 2>&1 ||
    { cat "$out.log" >&2; echo "emulated_gpu_check: compiling $1 for $target ($2) failed" >&2; exit 1; }
  sh "$here/build_host_module.sh" "$out.src" "$work/modules" > /dev/null
  echo "$out"
}

export LD_LIBRARY_PATH="$driver${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export V4_EMU_MODULE_DIR="$work/modules"

# The device v4run sees must be the emulated one, not a real GPU.
probe=$("$v4run" device --target $target 2>&1) || { echo "$probe" >&2; exit 1; }
echo "$probe"
case $probe in
*Emulated*) ;;
*) echo "emulated_gpu_check: v4run did not load the emulated driver from $driver" >&2; exit 1 ;;
esac

case $check in
verify)
  gpu=$(gpu_artifact "$1" "$2")
  "$v4run" verify "$gpu" --golden "$conformance/$1/golden.safetensors" --tolerance "$3"
  ;;
compare)
  gpu=$(gpu_artifact "$1" "${4:-fp32}" 1 "${6:-wmma}")
  cpu_precision=fp32 # the cpu backend runs fp32 and fp8; bf16 GPU artifacts compare with fp32
  [ "${4:-fp32}" = fp8 ] && cpu_precision=fp8
  cpu=$work/$1-cpu-$cpu_precision.v4a
  "$v4c" compile $(case_source "$1") --target cpu --precision $cpu_precision --decode-batch 1 -o "$cpu" \
    > "$cpu.log" 2>&1 || { cat "$cpu.log" >&2; exit 1; }
  "$v4run" info "$gpu" | grep '^options' # which tensor cores the GEMMs use
  "$v4run" compare "$gpu" "$cpu" --prompt-ids "$2" --decode "$3" --tolerance "${5:-1e-4}"
  ;;
consistency)
  gpu=$(gpu_artifact "$1" "$2")
  "$v4run" consistency "$gpu" --prompt-len "$3" --max-context 256
  ;;
batch)
  gpu=$(gpu_artifact "$1" fp32 1,4)
  "$v4run" consistency "$gpu" --prompt-len "$2" --batch 3 --decode "$3" --batch-tolerance 1e-5 --max-context 256
  # generate --batch: the GPU's batched sessions print the cpu artifact's ids.
  cpu=$work/$1-cpu-fp32-b1_4.v4a
  "$v4c" compile $(case_source "$1") --target cpu --decode-batch 1,4 -o "$cpu" > "$cpu.log" 2>&1 ||
    { cat "$cpu.log" >&2; exit 1; }
  "$v4run" generate "$gpu" --prompt-ids "5,17,300;7,8,9,10" -n 3 --batch 3 --max-context 256 > "$work/gpu-generate"
  "$v4run" generate "$cpu" --prompt-ids "5,17,300;7,8,9,10" -n 3 --batch 3 > "$work/cpu-generate"
  head -3 "$work/gpu-generate" > "$work/gpu-ids"
  head -3 "$work/cpu-generate" > "$work/cpu-ids"
  diff "$work/cpu-ids" "$work/gpu-ids"
  echo "generate --batch 3: the GPU's ids equal the cpu artifact's"
  ;;
interleave)
  gpu=$(gpu_artifact "$1" fp32)
  "$v4run" consistency "$gpu" --sessions 4 --pool-sessions 2 --prompt-len 5 --decode 2 --max-context 64
  ;;
prefix-reuse)
  gpu=$(gpu_artifact "$1" fp32)
  sh "$here/kv_prefix_reuse_check.sh" "$v4run" "$gpu" "$work/prefix-reuse"
  ;;
agent-trace)
  gpu=$(gpu_artifact "$1" fp32)
  sh "$here/agent_trace_check.sh" "$2" "$gpu" "$work/agent-trace"
  ;;
*)
  echo "emulated_gpu_check: unknown check '$check'" >&2
  exit 2
  ;;
esac
