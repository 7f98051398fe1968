#!/bin/sh
# usage: issue6_tiny_test.sh V4C V4RUN WORK_DIR [EMULATED_DRIVER_DIR]
# The plumbing of bench/issue6.sh before any GPU time is spent on it: a
# session directory like the bundle's, with tiny-mixed artifacts in place of
# V4-Flash's (cpu ones; with EMULATED_DRIVER_DIR, sm_90a ones run by the
# emulated CUDA driver, which takes long), and `issue6.sh SESSION --tiny`,
# which runs every row at tiny sizes. Checks that every v4run step succeeded
# and produced its JSON, that the table has every target row, and that the
# HF step (no torch here, or no GPU) fails alone without stopping the rest.
# The emulated run is slow (every row through the host emulation of the
# kernels): skipped (exit 77) unless V4_EMULATED_GPU_SLOW=1.
set -eu
v4c=$1 v4run=$2 work=$3 driver=${4:-}
if [ -n "$driver" ] && [ "${V4_EMULATED_GPU_SLOW:-0}" != 1 ]; then
  echo "SKIPPED: issue6.sh --tiny on the emulated driver takes long; run with V4_EMULATED_GPU_SLOW=1"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rm -rf "$work" && mkdir -p "$work/session/bin" "$work/session/work/issue6-tiny"
cp "$v4run" "$work/session/bin/v4run"
target=cpu
[ -n "$driver" ] && target=sm_90a
art=$work/session/work/issue6-tiny
case_dir=$root/tests/conformance/tiny-mixed
if [ "$target" = cpu ]; then # the cpu backend runs fp32 and fp8; fp32 stands in for bf16
  "$v4c" compile "$case_dir" --target cpu --decode-batch 1,8 -o "$art/bf16.v4a" > /dev/null
  "$v4c" compile "$case_dir" --target cpu --precision fp8 --experts fp4 --decode-batch 1,8 -o "$art/fp8.v4a" > /dev/null
  # No tensor cores on the cpu: the wgmma rows' plumbing runs the same artifacts.
  cp "$art/bf16.v4a" "$art/bf16-wgmma.v4a" && cp "$art/fp8.v4a" "$art/fp8-wgmma.v4a"
else
  for p in bf16 fp8; do
    extra=""
    [ $p = fp8 ] && extra="--experts fp4"
    for cores in wmma wgmma; do
      name=$p
      [ $cores = wmma ] || name=$p-$cores
      # shellcheck disable=SC2086 # extra is words
      "$v4c" compile "$case_dir" --target sm_90a --precision $p $extra --tensor-cores $cores --decode-batch 1,8 \
        --keep-cuda-source "$art/$name.src" -o "$art/$name.v4a" > "$work/$name.log" 2>&1 ||
        { cat "$work/$name.log" >&2; exit 1; }
      sh "$root/tests/emulated-cuda/build_host_module.sh" "$art/$name.src" "$work/modules" > /dev/null
    done
  done
  export LD_LIBRARY_PATH="$driver${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export V4_EMU_MODULE_DIR="$work/modules"
  export ISSUE6_SECONDS=100000 ISSUE6_STEP_SCALE=20 # emulation is slow; the deadline logic is checked on cpu
fi

OUT=$work/out sh "$here/issue6.sh" "$work/session" --tiny > "$work/issue6.txt" 2>&1 || { cat "$work/issue6.txt"; exit 1; }
cat "$work/issue6.txt"
python3 - "$work/out/issue6/results.jsonl" "$work/issue6.txt" "$target" <<'PY'
import json, sys
records = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    records[r["step"]] = r
target = sys.argv[3]
v4run_steps = ["decode.bf16.4k", "decode.fp8.4k", "decode.bf16.64k", "decode.bf16.256k", "long.bf16.1m",
               "prefill.bf16.32k", "prefill.bf16-wgmma.4k", "prefill.bf16-wgmma.32k", "batch.bf16.1",
               "batch.bf16.8", "profile.decode.4k", "profile.decode.1m", "profile.prefill.bf16",
               "profile.prefill.bf16-wgmma", "profile.prefill.fp8", "profile.prefill.fp8-wgmma"]
for name in v4run_steps:
    r = records.get(name)
    assert r and r["status"] == "ok" and r["json"], "step %s: %r" % (name, r)
    assert r["json"]["target"] == target, (name, r["json"]["target"])
# The tiny sizes reached every row: contexts as asked, the long prefill complete.
assert records["decode.bf16.4k"]["json"]["context"] == 32
assert records["long.bf16.1m"]["json"]["context"] == 80 and records["long.bf16.1m"]["json"]["prefill_complete"]
assert records["batch.bf16.8"]["json"]["batch"] == 8
assert records["profile.decode.1m"]["json"]["context"] == 127
assert records["profile.decode.1m"]["json"]["fill"] == ("compute" if target == "cpu" else "tiled")
assert records["profile.prefill.bf16"]["json"]["rows"] == 16
assert any(s["math"] == "fp8" for s in records["profile.prefill.fp8"]["json"]["steps"]), "fp8 profile has no fp8 step"
assert records["prefill.bf16-wgmma.32k"]["json"]["context"] == 64
# On the emulated GPU the wgmma profiles run the wgmma GEMM entries, the others none.
if target != "cpu":
    for name, wgmma in (("profile.prefill.bf16", False), ("profile.prefill.bf16-wgmma", True),
                        ("profile.prefill.fp8-wgmma", True)):
        kernels = [s["kernel"] for s in records[name]["json"]["steps"]]
        assert any("_wgmma" in k for k in kernels) == wgmma, (name, kernels)
# HF: ran (a machine with torch and a GPU) or failed alone.
assert records["hf"]["status"] in ("ok", "failed"), records["hf"]
text = open(sys.argv[2]).read()
for row in ("decode bf16 @4K", "decode fp8+fp4 @4K", "decode @64K", "decode @256K", "decode @1M",
            "1M-token prefill", "KV cache bytes/token", "prefill 4096 tokens/s", "prefill 32768 tokens/s",
            "dense GEMMs bf16", "grouped MoE GEMM fp8+fp4", "batched decode B=8", "indexer + top-k @1M",
            "attention @1M", "compressor @1M", "prefill 4096 tokens/s wgmma", "prefill 32768 tokens/s wgmma",
            "dense GEMMs bf16 wgmma", "grouped MoE GEMM fp8+fp4 wgmma", "GEMM kernels"):
    assert row in text, "table row missing: " + row
summary = json.loads([l for l in text.splitlines() if l.startswith('{"bench": "issue6"')][-1])
assert summary["targets"]["decode_bf16_4k"]["ms"] > 0 and summary["targets"]["indexer_1m"]["us"] > 0, summary
print("issue6 tiny plumbing ok")
PY
