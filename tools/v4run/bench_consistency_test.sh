#!/bin/sh
# usage: bench_consistency_test.sh V4C V4RUN CASE_DIR WORK_DIR
# v4run bench and v4run consistency on a CPU artifact of CASE_DIR.
set -eu
v4c=$1 v4run=$2 case_dir=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
"$v4c" compile "$case_dir" --target cpu -o "$work/model.v4a" > /dev/null

"$v4run" bench "$work/model.v4a" --prompt-len 40 --decode 6 --batch 1 > "$work/bench.txt"
cat "$work/bench.txt"
python3 - "$work/bench.txt" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
assert len(lines) == 1, "expected exactly one JSON line, got %d" % len(lines)
j = json.loads(lines[0])
assert j["target"] == "cpu" and j["prompt_len"] == 40 and j["decode_steps"] == 6 and j["batch"] == 1, j
for key in ("prefill_tokens_per_s", "decode_ms_per_token", "bytes_per_decode_step", "roofline_ms", "roofline_ratio"):
    assert j[key] > 0, (key, j[key])
# A decode step reads at least the LM head (vocab x hidden f32) and less than every weight.
assert j["weight_bytes_per_decode_step"] >= 512 * 64 * 4, j
assert j["cache_bytes_per_decode_step"] > 0, j
assert abs(j["roofline_ms"] - j["bytes_per_decode_step"] / 3.0e12 * 1e3) <= 1e-9 * j["roofline_ms"] + 1e-12, j
assert abs(j["roofline_ratio"] - j["decode_ms_per_token"] / j["roofline_ms"]) <= 1e-6 * j["roofline_ratio"], j
assert j["decode_clock"] == "host", j
print("bench JSON ok")
PY

# Two sessions decoding together (continuous batching): more bytes per step
# (a second window), one JSON line again.
"$v4run" bench "$work/model.v4a" --prompt-len 40 --decode 4 --batch 2 > "$work/bench2.txt"
python3 - "$work/bench.txt" "$work/bench2.txt" <<'PY'
import json, sys
one, two = ([json.loads(l) for l in open(p) if l.startswith("{")][0] for p in sys.argv[1:])
assert two["batch"] == 2 and two["decode_tokens_per_s"] > 0, two
assert two["cache_bytes_per_decode_step"] == 2 * one["cache_bytes_per_decode_step"], (one, two)
assert two["weight_bytes_per_decode_step"] > one["weight_bytes_per_decode_step"], (one, two)
print("batched bench JSON ok")
PY

"$v4run" consistency "$work/model.v4a" --prompt-len 40 > "$work/consistency.txt" || { cat "$work/consistency.txt"; exit 1; }
cat "$work/consistency.txt"
grep -q '^consistency: chunked prefill vs prefill .* ok$' "$work/consistency.txt"
grep -q '^consistency: token-by-token vs prefill .* ok$' "$work/consistency.txt"
grep -qx 'consistency: ok' "$work/consistency.txt"
