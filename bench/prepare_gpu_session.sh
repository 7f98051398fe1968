#!/bin/sh
# Here (no GPU needed): everything bench/gpu_session.sh needs on the GPU
# machine, which has no compiler, in TWO bundles (a device call carries at
# most 64 MiB with the working tree, and the checks and issue 6 run in
# separate calls):
# - SESSION_DIR.txz, the checks (xz: ~30 MiB where gzip gave ~51, since one
#   dictionary spans the artifacts' shared kernels; .tgz where xz is missing
#   here): v4run; v4probe-primitives (the wgmma /
#   cp.async facts, run first; tests/gpu/probes); the runtime's toy test
#   (v4rt_cuda_device_tests), the C API's and fork's GPU tests
#   (v4rt_api_emulated_tests with work/api/{gpu,cpu}.v4a, v4rt_cuda_fork_tests
#   with work/tiny-mixed-sm_90a-fp32.v4a: the artifacts their ctest fixtures
#   build here, without the emulator's host modules); every artifact of
#   tests/gpu/checks.list; the bf16 V4-Flash-2-layer artifact for vs_hf and
#   the agent trace (v4bench-agent).
# - SESSION_DIR-issue6.tgz (gzip), issue 6 (bench/issue6.sh): v4run and
#   V4-Flash-2-layer, dummy weights, prefill chunks of 4096, decode buckets
#   of 1/8/32/64 sessions (1 only where v4c refuses batched GPU buckets), in
#   bf16 and in fp8 + fp4 experts, each with the default wmma GEMM tiles
#   (bf16.v4a, fp8.v4a) and with `--tensor-cores wgmma` (bf16-wgmma.v4a,
#   fp8-wgmma.v4a; decode bucket 1 only: the wgmma variant changes prefill
#   GEMMs, decode runs GEMVs).
# usage: bench/prepare_gpu_session.sh BUILD_DIR [SESSION_DIR=BUILD_DIR/gpu-session]
# Then, one device call each (carry the .tgz):
#   bench/gpu_session.sh SESSION_DIR.txz
#   bench/gpu_session.sh SESSION_DIR-issue6.tgz issue6
set -eu
build=$1
dir=${2:-$build/gpu-session}
root=$(cd "$(dirname "$0")/.." && pwd)
issue6_dir=$dir-issue6
v4c=$build/bin/v4c
binaries="v4run v4probe-primitives v4rt_cuda_device_tests v4rt_api_emulated_tests v4rt_cuda_fork_tests"
for binary in v4c $binaries; do
  [ -x "$build/bin/$binary" ] ||
    { echo "prepare: build $binary in $build first (ninja -C $build v4c $binaries v4bench-agent)" >&2; exit 1; }
done
rm -rf "$dir" "$issue6_dir" && mkdir -p "$dir/bin" "$dir/work" "$issue6_dir/bin" "$issue6_dir/work/issue6"
for binary in $binaries; do
  cp "$build/bin/$binary" "$dir/bin/$binary"
done
cp "$build/bin/v4run" "$issue6_dir/bin/v4run"
# Issue 5's agent trace on GPU artifacts (bench/gpu_session.sh), when built.
[ -x "$build/bin/v4bench-agent" ] && cp "$build/bin/v4bench-agent" "$dir/bin/v4bench-agent"
# The runtime's own end-to-end test (a toy artifact around an nvcc-built cubin).
cp "$build/runtime/cuda/RuntimeTestKernels.sm_90a.cubin" "$dir/bin/"
# The GPU machine has only the driver: nothing but libc & co. may be linked
# dynamically (libcuda is dlopen'ed).
for binary in "$dir"/bin/*; do
  case $binary in *.cubin) continue ;; esac
  if ldd "$binary" | grep -Eqv 'linux-vdso|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|ld-linux'; then
    echo "prepare: $binary links more than libc/libm/libdl/libpthread/librt:" >&2
    ldd "$binary" >&2
    exit 1
  fi
done

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
# The C API's GPU tests (runtime/api/ApiCudaTest.cpp) on the real driver:
# V4RT_API_TEST_DIR=work/api with the artifacts of
# runtime/api/emulated_artifacts.sh (tiny-mixed fp32, decode buckets 1 and 4,
# for sm_90a and the CPU); the sm_90a one is checks.list's batch artifact.
echo "prepare: C API test artifacts (work/api)"
mkdir -p "$dir/work/api"
tiny_mixed=$root/tests/conformance/tiny-mixed
if [ -f "$dir/work/tiny-mixed-sm_90a-fp32-b1_4.v4a" ]; then
  ln "$dir/work/tiny-mixed-sm_90a-fp32-b1_4.v4a" "$dir/work/api/gpu.v4a" # tar stores the link, not the bytes
else
  "$v4c" compile "$tiny_mixed" --target sm_90a --precision fp32 --decode-batch 1,4 -o "$dir/work/api/gpu.v4a" \
    > "$dir/work/api.log" 2>&1 || { cat "$dir/work/api.log" >&2; exit 1; }
fi
"$v4c" compile "$tiny_mixed" --target cpu --decode-batch 1,4 -o "$dir/work/api/cpu.v4a" > "$dir/work/api.log" 2>&1 ||
  { cat "$dir/work/api.log" >&2; exit 1; }
# The fork tests' artifact (runtime/cuda/CMakeLists.txt's fixture: tiny-mixed
# fp32, decode bucket 1) is checks.list's compare artifact.
[ -f "$dir/work/tiny-mixed-sm_90a-fp32.v4a" ] ||
  "$v4c" compile "$tiny_mixed" --target sm_90a --precision fp32 --decode-batch 1 \
    -o "$dir/work/tiny-mixed-sm_90a-fp32.v4a" > "$dir/work/fork.log" 2>&1 || { cat "$dir/work/fork.log" >&2; exit 1; }
for precision in bf16 fp8; do
  experts=""
  [ $precision = fp8 ] && experts="--experts fp4"
  out=$issue6_dir/work/issue6/$precision.v4a
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
  out=$issue6_dir/work/issue6/$precision-wgmma.v4a
  echo "prepare: issue-6 artifact $precision with --tensor-cores wgmma (prefill chunk 4096, decode batch 1)"
  # shellcheck disable=SC2086 # experts is words
  "$v4c" compile --model v4-flash-2layer --weights dummy --target sm_90a --precision $precision $experts \
    --tensor-cores wgmma --prefill-chunk 4096 --decode-batch 1 -o "$out" > "$dir/work/issue6.log" 2>&1 ||
    { cat "$dir/work/issue6.log" >&2; exit 1; }
done
du -sh "$issue6_dir"/work/issue6/*.v4a
rm -f "$dir"/work/*.log "$issue6_dir"/work/*.log
rm -f "$dir.tgz" "$dir.txz" "$issue6_dir.tgz"
if command -v xz > /dev/null; then
  checks=$dir.txz
  tar -C "$(dirname "$dir")" -cf - "$(basename "$dir")" | xz -T2 -6 > "$checks"
else
  checks=$dir.tgz
  tar -C "$(dirname "$dir")" -czf "$checks" "$(basename "$dir")"
fi
tar -C "$(dirname "$issue6_dir")" -czf "$issue6_dir.tgz" "$(basename "$issue6_dir")"
for bundle in "$checks" "$issue6_dir.tgz"; do
  du -sh "${bundle%.t?z}" "$bundle"
  size=$(du -sm "$bundle" | cut -f1)
  [ "$size" -lt 48 ] || { echo "prepare: $bundle is $size MiB; a device call carries at most 64 MiB" >&2; exit 1; }
done
echo "prepare: ready; on the GPU machine, one call each (carry the bundle):"
echo "prepare:   bench/gpu_session.sh $checks           (the probe, the GPU tests, then every check)"
echo "prepare:   bench/gpu_session.sh $issue6_dir.tgz issue6   (issue 6's benchmarks, < 9 minutes)"
