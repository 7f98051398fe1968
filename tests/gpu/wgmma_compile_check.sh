#!/bin/sh
# `v4c compile --tensor-cores wgmma` end to end without a GPU: a conformance
# case compiled for sm_90a through nvcc must run its GEMMs on Hopper's
# warpgroup MMA. Checks:
#   - `v4run info` records the option; the cubin has *_wgmma* entries (the
#     GEMM tiles the option selects: dense GEMMs and the grouped MoE GEMM);
#   - each of them issues wgmma: with cuobjdump (next to nvcc, or $CUOBJDUMP),
#     HGMMA (bf16) or QGMMA (e4m3) instructions in its SASS; without it,
#     wgmma.mma_async in its PTX (the same source through `nvcc -ptx`; ptxas
#     has no other lowering for it);
#   - PRECISION fp8: every linear_fp8 wgmma entry multiplies e4m3 natively
#     (QGMMA; in the PTX wgmma.mma_async...e4m3.e4m3), none dequantizes;
#   - ptxas did not serialize any wgmma (its "wgmma.mma_async instructions are
#     serialized" performance warning, with -Xptxas -v);
#   - the same case without the option (wmma, the default) has no *_wgmma*
#     entry and no wgmma at all (the option is opt-in).
# usage: wgmma_compile_check.sh V4C V4RUN WORK_DIR CASE PRECISION [EXTRA V4C FLAGS...]
#   CASE: a checkpoint directory, or a named config (v4-flash-2layer: dummy weights)
# Exit 77 (ctest: skipped) where nvcc is missing.
set -eu
v4c=$1 v4run=$2 work=$3 case=$4 precision=$5
shift 5
extra="$*" # e.g. --experts fp4
nvcc=${V4C_NVCC:-}
[ -n "$nvcc" ] || nvcc=$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")
if [ ! -x "$nvcc" ]; then
  echo "SKIPPED: no nvcc (looked for $nvcc)"
  exit 77
fi
cuobjdump=${CUOBJDUMP:-$(dirname "$nvcc")/cuobjdump}
rm -rf "$work" && mkdir -p "$work"
source="$case"
[ -d "$case" ] || source="--model $case --weights dummy"

# compile VARIANT: the case for sm_90a with --tensor-cores VARIANT, then
# $work/VARIANT.entries: one line "entry wgmma_count e4m3_wgmma_count" per kernel entry.
compile() {
  src=$work/$1.src
  # shellcheck disable=SC2086 # source and the extra flags are words
  "$v4c" compile $source --target sm_90a --precision "$precision" --decode-batch 1 --tensor-cores "$1" $extra \
    --keep-cuda-source "$src" -o "$work/$1.v4a" > "$work/$1.log" 2>&1 ||
    { cat "$work/$1.log" >&2; echo "wgmma_compile_check: v4c compile --tensor-cores $1 failed" >&2; exit 1; }
  if [ -x "$cuobjdump" ]; then
    "$cuobjdump" -sass "$src/kernels.cubin" > "$work/$1.sass" ||
      { echo "wgmma_compile_check: cuobjdump -sass failed on $src/kernels.cubin" >&2; exit 1; }
    awk '/Function : / { if (name != "") print name, n, q; name = $NF; n = 0; q = 0 }
         /[HQ]GMMA/ { n++ }
         /QGMMA/ { q++ }
         END { if (name != "") print name, n, q }' "$work/$1.sass" > "$work/$1.entries"
  else
    "$nvcc" -ptx -arch=compute_90a -std=c++17 -O3 -I"$src/include" -o "$work/$1.ptx" "$src/kernels.cu" ||
      { echo "wgmma_compile_check: nvcc -ptx failed on $src/kernels.cu" >&2; exit 1; }
    awk '/\.entry / { if (name != "") print name, n, q; name = $0; sub(/.*\.entry /, "", name); sub(/\(.*/, "", name); n = 0; q = 0 }
         /wgmma\.mma_async/ { n++ }
         /wgmma\.mma_async.*\.e4m3\.e4m3/ { q++ }
         END { if (name != "") print name, n, q }' "$work/$1.ptx" > "$work/$1.entries"
  fi
}

compile wgmma
if [ -x "$cuobjdump" ]; then instruction="HGMMA/QGMMA"; else instruction="wgmma.mma_async (PTX; no cuobjdump at $cuobjdump)"; fi
"$v4run" info "$work/wgmma.v4a" | grep '^options' | tee "$work/wgmma.options"
grep -q '"tensor_cores":"wgmma"' "$work/wgmma.options" ||
  { echo "wgmma_compile_check: the artifact's options do not record tensor_cores wgmma" >&2; exit 1; }
wgmma_entries=$(grep -c '_wgmma' "$work/wgmma.entries" || true)
[ "$wgmma_entries" -gt 0 ] ||
  { echo "wgmma_compile_check: no *_wgmma* kernel entry" >&2; cat "$work/wgmma.entries" >&2; exit 1; }
missing=$(awk '$1 ~ /_wgmma/ && $2 == 0 { print $1 }' "$work/wgmma.entries")
[ -z "$missing" ] ||
  { echo "wgmma_compile_check: these wgmma entries have no $instruction:" >&2; echo "$missing" >&2; exit 1; }
count=$(awk '{ n += $2 } END { print n + 0 }' "$work/wgmma.entries")
echo "wgmma: $wgmma_entries entries issue $instruction ($count in all); e.g.:"
grep '_wgmma' "$work/wgmma.entries" | head -3
if [ "$precision" = fp8 ]; then
  # The native e4m3 tile (DenseWgmmaFp8.cuh): linear_fp8 multiplies the codes, no bf16 dequantization.
  fp8_entries=$(awk '$1 ~ /linear_fp8_wgmma/' "$work/wgmma.entries" | wc -l)
  [ "$fp8_entries" -gt 0 ] ||
    { echo "wgmma_compile_check: no linear_fp8 wgmma entry in an fp8 artifact" >&2; exit 1; }
  dequantizing=$(awk '$1 ~ /linear_fp8_wgmma/ && ($3 == 0 || $3 != $2) { print $1 }' "$work/wgmma.entries")
  [ -z "$dequantizing" ] ||
    { echo "wgmma_compile_check: these linear_fp8 wgmma entries do not run e4m3 wgmma only:" >&2
      echo "$dequantizing" >&2; exit 1; }
  echo "fp8: $fp8_entries linear_fp8 wgmma entries, every wgmma of them e4m3 x e4m3"
fi

# ptxas's own verdict on the async pipeline: serialized wgmma runs, slowly.
"$nvcc" -cubin -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 -Xptxas -v -I"$work/wgmma.src/include" \
  -o "$work/wgmma-v.cubin" "$work/wgmma.src/kernels.cu" > "$work/ptxas-v.log" 2>&1 ||
  { cat "$work/ptxas-v.log" >&2; exit 1; }
if grep -i 'wgmma.*serializ' "$work/ptxas-v.log" >&2; then
  echo "wgmma_compile_check: ptxas serialized wgmma (lines above): the tile's async pipeline is broken" >&2
  exit 1
fi
echo "ptxas: no wgmma serialized"

compile wmma
if grep -q '_wgmma' "$work/wmma.entries" || awk '$2 > 0 { found = 1 } END { exit !found }' "$work/wmma.entries"; then
  echo "wgmma_compile_check: the default (wmma) artifact has wgmma entries or instructions:" >&2
  awk '$1 ~ /_wgmma/ || $2 > 0' "$work/wmma.entries" >&2
  exit 1
fi
echo "wmma (default): no wgmma entry, no wgmma instruction"
echo "wgmma compile check ok"
