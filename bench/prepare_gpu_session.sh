#!/bin/sh
# Here (no GPU needed): everything bench/gpu_session.sh needs on the GPU
# machine, which has no compiler: v4run and every artifact of
# tests/gpu/checks.list, the bf16 V4-Flash-2-layer artifact for vs_hf, and
# issue 6's (bench/issue6.sh): V4-Flash-2-layer, dummy weights, prefill
# chunks of 4096, decode buckets of 1/8/32/64 sessions (1 only where v4c
# refuses batched GPU buckets), in bf16 and in fp8 + fp4 experts, each with
# the default wmma GEMM tiles (bf16.v4a, fp8.v4a) and with
# `--tensor-cores wgmma` (bf16-wgmma.v4a, fp8-wgmma.v4a; decode bucket 1 only:
# the wgmma variant changes prefill GEMMs, decode runs GEMVs).
# usage: bench/prepare_gpu_session.sh BUILD_DIR [SESSION_DIR=BUILD_DIR/gpu-session]
# Writes SESSION_DIR and SESSION_DIR.tgz (about half the bytes: a device call
# carries at most 64 MiB with the working tree). Then, in one device call:
# carry SESSION_DIR.tgz and run bench/gpu_session.sh SESSION_DIR.tgz.
set -eu
build=$1
dir=${2:-$build/gpu-session}
root=$(cd "$(dirname "$0")/.." && pwd)
v4c=$build/bin/v4c
[ -x "$v4c" ] && [ -x "$build/bin/v4run" ] && [ -x "$build/bin/v4rt_cuda_device_tests" ] ||
  { echo "prepare: build v4c, v4run and v4rt_cuda_device_tests in $build first" >&2; exit 1; }
rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/work"
cp "$build/bin/v4run" "$dir/bin/v4run"
# Issue 5's agent trace on GPU artifacts (bench/gpu_session.sh), when built.
[ -x "$build/bin/v4bench-agent" ] && cp "$build/bin/v4bench-agent" "$dir/bin/v4bench-agent"
# The runtime's own end-to-end test (a toy artifact around an nvcc-built cubin).
cp "$build/bin/v4rt_cuda_device_tests" "$build/runtime/cuda/RuntimeTestKernels.sm_90a.cubin" "$dir/bin/"
if ldd "$dir/bin/v4run" | grep -Eqv 'linux-vdso|libc\.so|libm\.so|libdl\.so|libpthread\.so|ld-linux'; then
  echo "prepare: v4run links more than libc/libm/libdl/libpthread:" >&2
  ldd "$dir/bin/v4run" >&2
  exit 1
fi

grep -v '^#' "$root/tests/gpu/checks.list" | while read -r name check args; do
  [ -n "$name" ] || continue
  echo "prepare: $name"
  # shellcheck disable=SC2086 # args are words
  V4_GPU_PREPARE=1 sh "$root/tests/gpu/gpu_check.sh" "$v4c" - "$dir/work" "$check" $args
done
echo "prepare: vs_hf artifact (v4-flash-2layer, dummy weights, bf16)"
"$v4c" compile --model v4-flash-2layer --weights dummy --target sm_90a --precision bf16 --decode-batch 1 \
  -o "$dir/work/v4-flash-2layer-sm_90a-bf16.v4a" > "$dir/work/vs_hf-compile.log" 2>&1 ||
  { cat "$dir/work/vs_hf-compile.log" >&2; exit 1; }
mkdir -p "$dir/work/issue6"
for precision in bf16 fp8; do
  experts=""
  [ $precision = fp8 ] && experts="--experts fp4"
  out=$dir/work/issue6/$precision.v4a
  echo "prepare: issue-6 artifact $precision (prefill chunk 4096, decode batches 1,8,32,64)"
  # shellcheck disable=SC2086 # experts is words
  if ! "$v4c" compile --model v4-flash-2layer --weights dummy --target sm_90a --precision $precision $experts \
    --prefill-chunk 4096 --decode-batch 1,8,32,64 -o "$out" > "$dir/work/issue6.log" 2>&1; then
    echo "prepare: batched decode buckets refused ($(grep -m1 error "$dir/work/issue6.log" | cut -c1-160)); batch 1 only"
    # shellcheck disable=SC2086
    "$v4c" compile --model v4-flash-2layer --weights dummy --target sm_90a --precision $precision $experts \
      --prefill-chunk 4096 --decode-batch 1 -o "$out" > "$dir/work/issue6.log" 2>&1 ||
      { cat "$dir/work/issue6.log" >&2; exit 1; }
  fi
done
# The wgmma variants: issue6.sh measures their prefill (4096, 32768) and
# profiles their prefill bucket next to the wmma ones.
for precision in bf16 fp8; do
  experts=""
  [ $precision = fp8 ] && experts="--experts fp4"
  out=$dir/work/issue6/$precision-wgmma.v4a
  echo "prepare: issue-6 artifact $precision with --tensor-cores wgmma (prefill chunk 4096, decode batch 1)"
  # shellcheck disable=SC2086 # experts is words
  "$v4c" compile --model v4-flash-2layer --weights dummy --target sm_90a --precision $precision $experts \
    --tensor-cores wgmma --prefill-chunk 4096 --decode-batch 1 -o "$out" > "$dir/work/issue6.log" 2>&1 ||
    { cat "$dir/work/issue6.log" >&2; exit 1; }
done
du -sh "$dir"/work/issue6/*.v4a
rm -f "$dir"/work/*.log
tar -C "$(dirname "$dir")" -czf "$dir.tgz" "$(basename "$dir")"
du -sh "$dir" "$dir.tgz"
size=$(du -sm "$dir.tgz" | cut -f1)
[ "$size" -lt 48 ] || { echo "prepare: $dir.tgz is $size MiB; a device call carries at most 64 MiB" >&2; exit 1; }
echo "prepare: ready; on the GPU machine, in one call: bench/gpu_session.sh $dir.tgz (carry $dir.tgz)"
echo "prepare: or issue 6's benchmarks (< 9 minutes): bench/gpu_session.sh $dir.tgz issue6"
