#!/bin/sh
# The C API's emulated-GPU tests' inputs (ctest fixture emulated-gpu.api-artifacts).
# usage: emulated_artifacts.sh V4C CASE_DIR OUT_DIR
# Writes OUT_DIR/gpu.v4a (CASE_DIR for sm_90a, fp32, decode buckets 1 and 4)
# with its host module in OUT_DIR/modules (tests/emulated-cuda/build_host_module.sh),
# and OUT_DIR/cpu.v4a (the same for the CPU).
set -eu
v4c=$1 case_dir=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
"$v4c" compile "$case_dir" --target sm_90a --precision fp32 --decode-batch 1,4 --keep-cuda-source "$out/gpu.src" \
  -o "$out/gpu.v4a.tmp" > "$out/gpu.log" 2>&1 || { cat "$out/gpu.log" >&2; exit 1; }
sh "$root/tests/emulated-cuda/build_host_module.sh" "$out/gpu.src" "$out/modules"
"$v4c" compile "$case_dir" --target cpu --decode-batch 1,4 -o "$out/cpu.v4a.tmp" > "$out/cpu.log" 2>&1 ||
  { cat "$out/cpu.log" >&2; exit 1; }
mv "$out/gpu.v4a.tmp" "$out/gpu.v4a"
mv "$out/cpu.v4a.tmp" "$out/cpu.v4a"
echo "$out/gpu.v4a $out/cpu.v4a"
