#!/bin/sh
# usage: profile_test.sh V4C V4RUN CASE_DIR WORK_DIR [EMULATED_DRIVER_DIR]
# `v4run profile` on tiny-mixed (tests/conformance/tiny-mixed): the decode
# bucket at context 8 and one page of the prefill bucket on the cpu artifact,
# with the bytes and FLOPs of known steps checked against values computed by
# hand from the case's config. With EMULATED_DRIVER_DIR (the folder of the
# emulated libcuda.so.1, tests/emulated-cuda), the sm_90a artifact runs too,
# through the real CUDA backend on the CPU: its table must have the same ops,
# bytes and FLOPs step for step (the CUDA entry names map back to the ops),
# and the whole-bucket time and every step time must be there (their values
# mean nothing on an emulated device).
set -eu
v4c=$1 v4run=$2 case_dir=$3 work=$4 driver=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rm -rf "$work" && mkdir -p "$work"
"$v4c" compile "$case_dir" --target cpu --decode-batch 1 -o "$work/cpu.v4a" > /dev/null

"$v4run" profile "$work/cpu.v4a" --bucket decode --context 8 --repeat 3 --warmup 1 --threads 1 > "$work/cpu-decode.txt"
"$v4run" profile "$work/cpu.v4a" --bucket prefill --context 16 --tokens 16 --repeat 2 --warmup 1 --threads 1 \
  > "$work/cpu-prefill.txt"
"$v4run" profile "$work/cpu.v4a" --bucket decode --context 8 --model-only > "$work/model-only.txt"
sed -n '1,12p' "$work/cpu-decode.txt"

# Refusals are one line each.
for args in "--bucket middle" "--fill tiled" "--batch 4" "--bucket prefill --tokens 64 --context 16"; do
  # shellcheck disable=SC2086 # args are words
  if "$v4run" profile "$work/cpu.v4a" $args > "$work/refusal.txt" 2>&1; then
    echo "profile_test: 'profile $args' should have failed" >&2
    exit 1
  fi
  [ "$(wc -l < "$work/refusal.txt")" -eq 1 ] && grep -q '^v4run: error: ' "$work/refusal.txt" ||
    { cat "$work/refusal.txt" >&2; exit 1; }
done

check='
import json, sys

def load(path):
    rows = [l for l in open(path) if l.startswith("{")]
    assert len(rows) == 1, "%s: expected one JSON line, got %d" % (path, len(rows))
    return json.loads(rows[0])

def nth(j, op, n=0):
    steps = [s for s in j["steps"] if s["op"] == op]
    assert len(steps) > n, "no step #%d of %s" % (n, op)
    return steps[n]

def expect(step, **values):
    for key, want in values.items():
        assert step[key] == want, "step %d (%s): %s = %r, expected %r" % (step["step"], step["op"], key, step[key], want)

# tiny-mixed: D 64, hc 4, vocab 512, q_lora 32, 4 heads x 32, window 8,
# CSA rate 4 (indexer 16 heads x 16, top-4), HCA rate 16, 8 experts top-2,
# I 48; f32 everything. Decode at context 8 (the token at position 8).
d = load(sys.argv[1])
assert d["bucket"] == "decode_1" and d["rows"] == 1 and d["context"] == 8 and len(d["steps"]) == 94, d["bucket"]
assert "?" not in {s["op"] for s in d["steps"]}, "a step without an op"
# embedding: one row of 64 f32 read; ids (4 B) in, 64 f32 out.
expect(nth(d, "v4.embed"), weight_bytes=256, activation_bytes=4 + 256, flops=0)
# q_a and kv projections [32, 64] after the norm [64]: 2 x (32 + 32) x 64 FLOPs.
expect(nth(d, "v4.norm_linear"), weight_bytes=64 * 4 + 2 * 32 * 64 * 4, flops=2 * 64 * 64, math="f32")
# MoE: k/E = 2/8 of gate_up [8, 96, 64] + down [8, 64, 48]; 2 k 3 I D FLOPs.
expect(nth(d, "v4.moe"), weight_bytes=(8 * 96 * 64 + 8 * 64 * 48) * 4 // 4, flops=2 * 2 * 3 * 48 * 64)
# Sliding attention (layer 0): min(9, 8) window candidates, 8 rows of 32 f32 read.
expect(nth(d, "v4.attention", 0), flops=4 * 4 * 32 * 8, cache_read_bytes=8 * 32 * 4)
# CSA indexer (layer 1): 9 / 4 = 2 keys of 16 f32 scored by 16 heads x 16.
expect(nth(d, "v4.indexer_topk"), flops=2 * 16 * 16 * 2, cache_read_bytes=2 * 16 * 4)
# CSA attention: 8 window + min(2, 4) entries; 8 window rows and 2 entries read.
expect(nth(d, "v4.attention", 1), flops=4 * 4 * 32 * 10, cache_read_bytes=8 * 32 * 4 + 2 * 32 * 4)
# The window append writes one row of 32 f32.
expect(nth(d, "v4.rope_cache_append"), cache_written_bytes=32 * 4, cache_read_bytes=0)
# LM head [512, 64] after the final norm [64].
expect(d["steps"][-1], op="v4.norm_linear", weight_bytes=512 * 64 * 4 + 64 * 4, flops=2 * 512 * 64)
assert all(s["us"] > 0 for s in d["steps"]) and d["bucket_us"] > 0, "missing times"
assert abs(sum(o["us"] for o in d["ops"]) - d["steps_us"]) < 1e-6 * d["steps_us"], "per-op times do not add up"
# --model-only: the same bytes and FLOPs, nothing timed.
m = load(sys.argv[1].replace("cpu-decode.txt", "model-only.txt"))
assert m["timed"] is False and m["clock"] == "none" and m["bucket_us"] == 0, m["clock"]
assert [(s["op"], s["bytes"], s["flops"]) for s in m["steps"]] == [(s["op"], s["bytes"], s["flops"]) for s in d["steps"]]

# Prefill: 16 tokens at context 16 (positions 16..31).
p = load(sys.argv[2])
assert p["bucket"] == "prefill_64" and p["rows"] == 16 and p["context"] == 16, p["bucket"]
expect(nth(p, "v4.norm_linear"), flops=16 * 2 * 64 * 64)
expect(nth(p, "v4.moe"), flops=16 * 2 * 2 * 3 * 48 * 64)
window = sum(min(q + 1, 8) for q in range(16, 32))
entries = sum(min((q + 1) // 4, 4) for q in range(16, 32))
expect(nth(p, "v4.attention", 0), flops=4 * 4 * 32 * window)
expect(nth(p, "v4.attention", 1), flops=4 * 4 * 32 * (window + entries))
expect(nth(p, "v4.indexer_topk"), flops=2 * 16 * 16 * sum((q + 1) // 4 for q in range(16, 32)))
# cache_append of 16 rows into the ring of 8: 8 rows written.
expect(nth(p, "v4.cache_append"), cache_written_bytes=8 * 32 * 4)

if len(sys.argv) > 3: # the GPU artifact: same rows, step for step
    for path, ref in zip(sys.argv[3:], (d, p)):
        g = load(path)
        assert g["target"] == "sm_90a" and g["clock"] == "cuda events" and "Emulated" in g["backend"], g["backend"]
        assert len(g["steps"]) == len(ref["steps"]), (len(g["steps"]), len(ref["steps"]))
        for gs, cs in zip(g["steps"], ref["steps"]):
            for key in ("op", "bytes", "weight_bytes", "activation_bytes", "cache_read_bytes",
                        "cache_written_bytes", "flops", "math"):
                assert gs[key] == cs[key], "step %d: GPU %s %s = %r, cpu %r" % (gs["step"], gs["kernel"], key, gs[key], cs[key])
            assert gs["us"] > 0, gs
        assert g["bucket_us"] > 0
print("profile bytes and FLOPs ok")
'

if [ -z "$driver" ]; then
  python3 -c "$check" "$work/cpu-decode.txt" "$work/cpu-prefill.txt"
  exit 0
fi

# The sm_90a artifact on the emulated driver.
"$v4c" compile "$case_dir" --target sm_90a --decode-batch 1 --keep-cuda-source "$work/gpu-src" \
  -o "$work/gpu.v4a" > "$work/gpu-compile.log" 2>&1 || { cat "$work/gpu-compile.log" >&2; exit 1; }
sh "$root/tests/emulated-cuda/build_host_module.sh" "$work/gpu-src" "$work/modules" > /dev/null
export LD_LIBRARY_PATH="$driver${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export V4_EMU_MODULE_DIR="$work/modules"
probe=$("$v4run" device --target sm_90a 2>&1) || { echo "$probe" >&2; exit 1; }
case $probe in
*Emulated*) ;;
*) echo "profile_test: v4run did not load the emulated driver from $driver" >&2; exit 1 ;;
esac
# One run each (emulation is slow); --prime 0: no graph replay queued in front.
"$v4run" profile "$work/gpu.v4a" --bucket decode --context 8 --repeat 1 --warmup 0 --prime 0 > "$work/gpu-decode.txt"
"$v4run" profile "$work/gpu.v4a" --bucket prefill --context 16 --tokens 16 --repeat 1 --warmup 0 --prime 0 \
  > "$work/gpu-prefill.txt"
sed -n '1,12p' "$work/gpu-decode.txt"
python3 -c "$check" "$work/cpu-decode.txt" "$work/cpu-prefill.txt" "$work/gpu-decode.txt" "$work/gpu-prefill.txt"
