#!/bin/sh
# Our `v4run bench` and HF transformers on the same model config, side by
# side, on the GPU machine in one call (nothing is built there: v4run and the
# artifact are carried; the artifact is compiled here with
#   v4c compile --model v4-flash-2layer --weights dummy --target sm_90a --precision bf16 -o A.v4a).
# usage: bench/vs_hf.sh V4RUN ARTIFACT [PROMPT_LEN=4096] [DECODE=32]
# Prints both reports, a table, and one JSON line {"ours": ..., "hf": ...}.
set -eu
v4run=$1 artifact=$2 prompt=${3:-4096} decode=${4:-32}
here=$(cd "$(dirname "$0")" && pwd)
work=${OUT:-${TMPDIR:-/tmp}}/vs_hf
mkdir -p "$work"

"$v4run" config "$artifact" > "$work/config.json"
echo "== ours: v4run bench"
"$v4run" bench "$artifact" --prompt-len "$prompt" --decode "$decode" --batch 1 \
  --max-context $((prompt + decode + 64)) > "$work/ours.txt" 2>&1 || { cat "$work/ours.txt"; echo "vs_hf: v4run bench failed"; }
cat "$work/ours.txt"
echo "== HF transformers"
PYTHONUNBUFFERED=1 python3 "$here/hf_bench.py" --config "$work/config.json" --prompt-len "$prompt" \
  --decode "$decode" > "$work/hf.txt" 2>&1 || { cat "$work/hf.txt"; echo "vs_hf: hf_bench.py failed"; }
cat "$work/hf.txt"

python3 - "$work/ours.txt" "$work/hf.txt" <<'PY'
import json, sys
def last_json(path):
    rows = [l for l in open(path) if l.startswith("{")]
    return json.loads(rows[-1]) if rows else None
ours, hf = last_json(sys.argv[1]), last_json(sys.argv[2])
def cell(d, key, fmt):
    return fmt % d[key] if d and key in d else "-"
print("%-24s %16s %16s %10s" % ("", "v4run", "HF transformers", "speed-up"))
for key, label, fmt, higher_better in [("prefill_tokens_per_s", "prefill tokens/s", "%.1f", True),
                                       ("decode_ms_per_token", "decode ms/token", "%.3f", False)]:
    ratio = "-"
    if ours and hf and key in ours and key in hf and ours[key] > 0 and hf[key] > 0:
        ratio = "%.2fx" % (ours[key] / hf[key] if higher_better else hf[key] / ours[key])
    print("%-24s %16s %16s %10s" % (label, cell(ours, key, fmt), cell(hf, key, fmt), ratio))
if ours:
    print("%-24s %16s" % ("roofline ms (decode)", cell(ours, "roofline_ms", "%.3f")))
    print("%-24s %16s" % ("measured / roofline", cell(ours, "roofline_ratio", "%.2f")))
print(json.dumps({"bench": "vs_hf", "ours": ours, "hf": hf}))
sys.exit(0 if ours and hf else 1)
PY
