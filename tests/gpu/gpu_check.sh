#!/bin/sh
# One GPU check of checks.list.
# usage: gpu_check.sh V4C V4RUN WORK_DIR CHECK ARGUMENT...
#   V4C = "-": use the artifacts already in WORK_DIR (made by
#   bench/prepare_gpu_session.sh; the GPU machine has no compiler).
#   V4_GPU_PREPARE=1: only compile the check's artifacts (no device needed).
#   V4_GPU_TARGET: the target (default sm_90a).
# PRECISION may carry the GEMM tile variant: "bf16+wgmma" compiles with
# `--tensor-cores wgmma` (sm_90a's warpgroup MMA; docs/cuda-compile.md) into
# NAME-TARGET-bf16-wgmma.v4a; plain "bf16" is the default wmma tile.
# Exit 77 (ctest: skipped) with the reason when v4run finds no CUDA device.
set -eu
v4c=$1 v4run=$2 work=$3 check=$4
shift 4
target=${V4_GPU_TARGET:-sm_90a}
prepare=${V4_GPU_PREPARE:-0}
root=$(cd "$(dirname "$0")/../.." && pwd)
conformance=$root/tests/conformance
configs=$root/tests/gpu/configs # config-only cases (configs/README.md)
mkdir -p "$work"

if [ "$prepare" != 1 ]; then
  if ! probe=$("$v4run" device --target "$target" 2>&1); then
    echo "SKIPPED: $probe"
    exit 77
  fi
  echo "$probe"
fi

# artifact NAME TARGET PRECISION [DECODE_BATCHES]: path of the artifact of a
# conformance case or named model, compiled unless V4C is "-" (or, when
# preparing, it exists). Decode buckets: DECODE_BATCHES (default 1: one
# session per step; e.g. 1,4 adds a batched bucket of 4 sessions).
artifact() {
  batches=${4:-1}
  precision=${3%+*} cores=wmma
  [ "$precision" = "$3" ] || cores=${3#*+}
  label=$3
  [ "$cores" = wmma ] || label=$precision-$cores
  out=$work/$1-$2-$label.v4a
  [ "$batches" = 1 ] || out=$work/$1-$2-$label-b$(echo "$batches" | tr , _).v4a
  cores_flag="" # wmma is the default (and the only spelling cpu artifacts take)
  [ "$cores" = wmma ] || cores_flag="--tensor-cores $cores"
  if [ "$v4c" != - ] && { [ "$prepare" != 1 ] || [ ! -f "$out" ]; }; then
    if [ -d "$conformance/$1" ]; then
      # shellcheck disable=SC2086 # cores_flag is words
      "$v4c" compile "$conformance/$1" --target "$2" --precision "$precision" --decode-batch "$batches" $cores_flag \
        -o "$out" > "$out.log" 2>&1 ||
        { cat "$out.log" >&2; echo "gpu_check: compiling $1 for $2 ($label) failed" >&2; exit 1; }
    elif [ -f "$configs/$1/config.json" ]; then # config only: dummy weights, the same on every target
      # shellcheck disable=SC2086
      "$v4c" compile "$configs/$1" --weights dummy --target "$2" --precision "$precision" --decode-batch "$batches" \
        $cores_flag -o "$out" > "$out.log" 2>&1 ||
        { cat "$out.log" >&2; echo "gpu_check: compiling $1 for $2 ($label) failed" >&2; exit 1; }
    else
      # shellcheck disable=SC2086
      "$v4c" compile --model "$1" --weights dummy --target "$2" --precision "$precision" --decode-batch "$batches" \
        $cores_flag -o "$out" > "$out.log" 2>&1 ||
        { cat "$out.log" >&2; echo "gpu_check: compiling --model $1 for $2 ($3) failed" >&2; exit 1; }
    fi
  fi
  [ -f "$out" ] || { echo "gpu_check: $out is missing (run bench/prepare_gpu_session.sh)" >&2; exit 1; }
  echo "$out"
}

case $check in
verify)
  name=$1 precision=$2 tolerance=$3
  gpu=$(artifact "$name" "$target" "$precision")
  [ "$prepare" = 1 ] && exit 0
  "$v4run" verify "$gpu" --golden "$conformance/$name/golden.safetensors" --tolerance "$tolerance"
  ;;
consistency)
  name=$1 precision=$2 length=$3
  gpu=$(artifact "$name" "$target" "$precision")
  [ "$prepare" = 1 ] && exit 0
  # Real-size models: caches for 4096 tokens, not the config's million.
  "$v4run" consistency "$gpu" --prompt-len "$length" --max-context 4096
  ;;
compare)
  # compare CASE [PRECISION TOLERANCE PROMPT_IDS DECODE]: default fp32 within
  # 1e-4 over 20 tokens + 3 decoded; a bf16 GPU artifact (e.g. bf16+wgmma)
  # against the same fp32 CPU twin, per launch, over a prompt short enough
  # that bf16 rounding flips no indexer top-k choice (on tiny-mixed 20 tokens
  # do: rel 0.3-0.5 on v4.indexer_topk, GEMMs ~2e-2). An fp8 GPU artifact
  # (e.g. fp8+wgmma: native e4m3 wgmma) against the fp8 CPU twin (the same
  # quantized steps; its bf16 activations re-quantized give up to ~0.17).
  name=$1 precision=${2:-fp32} tolerance=${3:-1e-4}
  prompt=${4:-3,17,98,5,250,77,1,200,12,9,130,41,8,222,64,128,7,19,33,2} decode=${5:-3}
  gpu=$(artifact "$name" "$target" "$precision")
  cpu_precision=fp32 # the cpu backend runs fp32 and fp8
  [ "${precision%+*}" = fp8 ] && cpu_precision=fp8
  cpu=$(artifact "$name" cpu $cpu_precision)
  [ "$prepare" = 1 ] && exit 0
  "$v4run" info "$gpu" | grep '^options' # which tensor cores the GEMMs use
  "$v4run" compare "$gpu" "$cpu" --prompt-ids "$prompt" --decode "$decode" --tolerance "$tolerance"
  ;;
bench)
  name=$1
  gpu=$(artifact "$name" "$target" fp32)
  [ "$prepare" = 1 ] && exit 0
  "$v4run" bench "$gpu" --prompt-len 64 --decode 16 --batch 1 > "$work/bench-$name.txt"
  cat "$work/bench-$name.txt"
  python3 - "$work/bench-$name.txt" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
assert len(lines) == 1, "expected one JSON line"
j = json.loads(lines[0])
assert j["decode_clock"] == "cuda_events", j
for key in ("prefill_tokens_per_s", "decode_ms_per_token", "bytes_per_decode_step", "roofline_ratio"):
    assert j[key] > 0, (key, j)
print("gpu bench JSON ok")
PY
  ;;
batch)
  # Continuous batching: SESSIONS sessions (prompts of PROMPT_LEN, one token
  # shorter each) decoded in the batched buckets vs each alone, then bench's
  # batched step (CUDA events) as one JSON line.
  name=$1 precision=$2 batches=$3 sessions=$4 length=$5
  gpu=$(artifact "$name" "$target" "$precision" "$batches")
  [ "$prepare" = 1 ] && exit 0
  "$v4run" consistency "$gpu" --prompt-len "$length" --batch "$sessions" --decode 4 --batch-tolerance 1e-5 \
    --max-context 4096
  "$v4run" bench "$gpu" --prompt-len "$length" --decode 8 --batch "$sessions" --max-context 4096 \
    > "$work/bench-batch-$name.txt"
  cat "$work/bench-batch-$name.txt"
  python3 - "$work/bench-batch-$name.txt" "$sessions" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
assert len(lines) == 1, "expected one JSON line"
j = json.loads(lines[0])
assert j["decode_clock"] == "cuda_events" and j["batch"] == int(sys.argv[2]), j
for key in ("decode_ms_per_step", "decode_tokens_per_s", "bytes_per_decode_step", "roofline_ratio"):
    assert j[key] > 0, (key, j)
print("gpu batched bench JSON ok")
PY
  ;;
kvpool)
  # Device KV pool (docs/kv-cache.md): SESSIONS sessions interleaved through
  # a pool of POOL of them (preempted to pinned host memory, swapped back,
  # decode graphs recaptured) vs each alone; equal tokens and logits.
  name=$1 precision=$2 sessions=$3 pool=$4 length=$5
  gpu=$(artifact "$name" "$target" "$precision")
  [ "$prepare" = 1 ] && exit 0
  "$v4run" consistency "$gpu" --sessions "$sessions" --pool-sessions "$pool" --prompt-len "$length" --decode 3 \
    --max-context 4096
  ;;
prefix)
  # Prefix reuse on the GPU: --cache-dir across processes under full /
  # periodic:48 / zero, a device page tier, the pool's one-line error.
  name=$1
  gpu=$(artifact "$name" "$target" fp32)
  [ "$prepare" = 1 ] && exit 0
  sh "$root/tests/emulated-cuda/kv_prefix_reuse_check.sh" "$v4run" "$gpu" "$work/prefix-$name"
  ;;
*)
  echo "gpu_check: unknown check '$check'" >&2
  exit 2
  ;;
esac
