#!/bin/sh
# Issue 6 (speed on the H100) in ONE device call, in under 9 minutes: builds
# nothing (v4run and the artifacts come from bench/prepare_gpu_session.sh:
# V4-Flash with 2 layers, dummy weights, sm_90a, bf16 and fp8 + fp4, prefill
# chunks of 4096, decode buckets of 1/8/32/64 sessions) and runs, in order,
# printing each row as soon as it is measured:
#   decode bf16 @4K, decode fp8+fp4 @4K, decode @64K, @256K, the 1M-token
#   prefill (chunked, timed) and decode @1M, prefill of 32768, batched decode
#   at 1/8/32/64 sessions, `v4run profile` of decode @4K, decode @1M (tiled
#   fill) and the 4096-token prefill (bf16 wmma, bf16 wgmma, then fp8+fp4
#   wmma and wgmma last), HF transformers on the same config (decode @4K,
#   prefill 4096 and 32768, out-of-memory reported as OOM),
#   and, for the artifacts compiled with `--tensor-cores wgmma` (bf16-wgmma.v4a,
#   fp8-wgmma.v4a: the warpgroup-MMA GEMM tiles), prefill of 4096 and 32768
#   tokens and the prefill profiles, so the table says which GEMM variant meets
#   target 3 (GEMMs >= 60% of the bf16 tensor peak). To fit them in the
#   deadline the 1M-token prefill's share is 60 s smaller than before.
# then the targets table (target, ours, HF, roofline, ratio, met/missed),
# where the time goes per profile, and one JSON line (bench/issue6_report.py).
# Every step has a time limit (and the long prefills a budget inside v4run),
# taken from what is left before the deadline minus what later steps need,
# so one hang cannot eat the call.
#
# usage: bench/issue6.sh [SESSION=build/gpu-session.tgz] [--tiny]
#   SESSION: the bundle (or its unpacked directory) with bin/v4run and
#   work/issue6/{bf16,fp8,bf16-wgmma,fp8-wgmma}.v4a (a bundle without the
#   wgmma ones skips their rows, saying so). --tiny: every row at tiny sizes on
#   work/issue6-tiny/{bf16,fp8}.v4a (tiny-mixed; cpu artifacts or sm_90a ones
#   on the emulated driver): the plumbing check, bench/issue6_tiny_test.sh.
# Environment: OUT (logs: $OUT/issue6/), ISSUE6_SECONDS (deadline, default
# 510), ISSUE6_STEP_SCALE (multiplies every step's own limit; the emulated
# driver needs ~20), PYTHON (default python3).
set -u
session=${1:-build/gpu-session.tgz}
mode=${2:-full}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
case $session in
*.tgz)
  mkdir -p /tmp/v4-gpu-session && tar -C /tmp/v4-gpu-session -xzf "$session" ||
    { echo "issue6: cannot unpack $session"; exit 1; }
  session=/tmp/v4-gpu-session/$(basename "$session" .tgz)
  ;;
esac
v4run=$session/bin/v4run
out=${OUT:-$session/out}/issue6
mkdir -p "$out"
results=$out/results.jsonl
log=$out/issue6.log
: > "$results"
: > "$log"
start=$(date +%s)
deadline=$((start + ${ISSUE6_SECONDS:-510}))

if [ "$mode" = --tiny ]; then
  art=$session/work/issue6-tiny
  # tiny-mixed: prefill chunks of 64, pages of 16, decode buckets of 1 and 8.
  c4k=32 c64k=48 c256k=64 c1m=80 max1m=128 pre_b=64 dec=2 dec_long=2 batches="1 8"
  repeat=1 warmup=0 prime=0 prefill_tokens=16 hf_prefill=32,64
else
  art=$session/work/issue6
  c4k=4096 c64k=65536 c256k=262144 c1m=1048000 max1m=1048576 pre_b=32768 dec=32 dec_long=8 batches="1 8 32 64"
  repeat=20 warmup=3 prime=-1 prefill_tokens=0 hf_prefill=4096,32768
fi
bf16=$art/bf16.v4a fp8=$art/fp8.v4a
bf16w=$art/bf16-wgmma.v4a fp8w=$art/fp8-wgmma.v4a
for a in "$v4run" "$bf16" "$fp8"; do
  [ -e "$a" ] || { echo "issue6: $a is missing (bench/prepare_gpu_session.sh builds the bundle)"; exit 1; }
done
for a in "$bf16w" "$fp8w"; do
  [ -e "$a" ] || echo "issue6: $a is missing: its wgmma rows are skipped" | tee -a "$log"
done
target=$("$v4run" info "$bf16" | sed -n 's/^target *//p')
fill=tiled
[ "$target" = cpu ] && fill=compute # cpu sessions compute their context
if [ "$target" != cpu ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$log" 2>&1
  if ! probe=$("$v4run" device --target "$target" 2>&1); then
    echo "$probe" | tee -a "$log"
    echo "issue6: no usable device; stopping"
    exit 1
  fi
  echo "$probe" | tee -a "$log"
fi
"$v4run" config "$bf16" > "$out/config.json" || { echo "issue6: v4run config failed"; exit 1; }

# step NAME MAX_SECONDS RESERVE_SECONDS COMMAND...: runs COMMAND with a limit
# of min(MAX, what is left before the deadline - RESERVE) seconds (skipped
# under 10), logs its output, records its last JSON line and prints its row.
# The command may say "@LIMIT@" (the limit) and "@BUDGET@" (70% of it).
# A command naming an artifact that is not there is skipped, saying so.
step() {
  name=$1 max=$(($2 * ${ISSUE6_STEP_SCALE:-1})) reserve=$3
  shift 3
  now=$(date +%s)
  limit=$((deadline - now - reserve))
  [ "$limit" -gt "$max" ] && limit=$max
  status=skipped note="no time left before the deadline" secs=0
  for word in "$@"; do
    case $word in *.v4a) [ -e "$word" ] || { limit=0 note="$(basename "$word") is not in the bundle"; } ;; esac
  done
  if [ "$limit" -ge 10 ]; then
    budget=$((limit * 7 / 10))
    cmd=""
    for word in "$@"; do
      word=$(printf '%s' "$word" | sed "s/@LIMIT@/$limit/g; s/@BUDGET@/$budget/g")
      cmd="$cmd '$word'"
    done
    eval "timeout -k 5 $limit $cmd" > "$out/$name.txt" 2>&1
    rc=$?
    secs=$(($(date +%s) - now))
    case $rc in
    0) status=ok note="" ;;
    124 | 137) status=timeout note="stopped after ${limit}s" ;;
    *) status=failed note=$(grep -v '^{' "$out/$name.txt" | tail -1 | cut -c1-160) ;;
    esac
    { echo "=================== $name: $status in ${secs}s:$cmd"; cat "$out/$name.txt"; } >> "$log"
  fi
  "$python" - "$results" "$name" "$status" "$secs" "$note" "$out/$name.txt" <<'PY'
import json, os, sys
results, name, status, secs, note, path = sys.argv[1:]
lines = open(path, errors="replace").read().splitlines() if os.path.exists(path) and status != "skipped" else []
found = [l for l in lines if l.startswith("{")]
data = None
if found:
    try:
        data = json.loads(found[-1])
    except ValueError:
        note = note or "unreadable JSON line"
progress = [l for l in lines if l.startswith("prefill: ")]
with open(results, "a") as f:
    f.write(json.dumps({"step": name, "status": status, "secs": int(secs), "note": note, "json": data,
                        "progress": progress[-1] if progress else None}) + "\n")
PY
  "$python" "$here/issue6_report.py" row "$results" "$name"
}

ctx() { echo $(($1 + dec + 64)); } # session capacity for a bench at context $1

# 1. Decode at 4K (also the 4096-token prefill and the KV bytes per token).
step decode.bf16.4k 60 360 "$v4run" bench "$bf16" --context $c4k --decode $dec --max-context "$(ctx $c4k)"
step decode.fp8.4k 60 340 "$v4run" bench "$fp8" --context $c4k --decode $dec --max-context "$(ctx $c4k)"
# 2. Long context: decode after a real (chunked) prefill; the 1M prefill's time.
step decode.bf16.64k 90 320 "$v4run" bench "$bf16" --context $c64k --decode $dec_long --warmup 2 \
  --max-context "$(ctx $c64k)" --prefill-budget @BUDGET@
step decode.bf16.256k 150 290 "$v4run" bench "$bf16" --context $c256k --decode $dec_long --warmup 2 \
  --max-context "$(ctx $c256k)" --prefill-budget @BUDGET@
step long.bf16.1m 300 260 "$v4run" bench "$bf16" --context $c1m --decode $dec_long --warmup 2 \
  --max-context $max1m --prefill-budget @BUDGET@
# 3. Prefill of 32768 tokens (4096: row decode.bf16.4k), then both with the
# wgmma GEMM tiles (a hang in an unproven kernel costs at most 30 / 45 s).
step prefill.bf16.32k 60 240 "$v4run" bench "$bf16" --context $pre_b --decode 2 --warmup 1 --max-context "$(ctx $pre_b)"
step prefill.bf16-wgmma.4k 30 220 "$v4run" bench "$bf16w" --context $c4k --decode 2 --warmup 1 \
  --max-context "$(ctx $c4k)"
step prefill.bf16-wgmma.32k 45 190 "$v4run" bench "$bf16w" --context $pre_b --decode 2 --warmup 1 \
  --max-context "$(ctx $pre_b)"
# 4. Batched decode at 4K contexts.
reserve=190
for b in $batches; do
  step "batch.bf16.$b" 60 $reserve "$v4run" bench "$bf16" --context $c4k --decode 16 --batch "$b" \
    --max-context "$(ctx $c4k)"
  reserve=$((reserve - 20))
done
# 5. Where the time goes: launch by launch, against each kernel's ceiling.
step profile.decode.4k 40 120 "$v4run" profile "$bf16" --bucket decode --context $c4k --repeat $repeat \
  --warmup $warmup --prime $prime --quiet
step profile.decode.1m 60 105 "$v4run" profile "$bf16" --bucket decode --context $((max1m - 1)) --fill $fill \
  --max-context $max1m --repeat $repeat --warmup $warmup --prime $prime --quiet
step profile.prefill.bf16 50 90 "$v4run" profile "$bf16" --bucket prefill --context 0 --tokens $prefill_tokens \
  --repeat 3 --warmup 1 --prime $prime --quiet
step profile.prefill.bf16-wgmma 40 60 "$v4run" profile "$bf16w" --bucket prefill --context 0 \
  --tokens $prefill_tokens --repeat 3 --warmup 1 --prime $prime --quiet
# 6. HF transformers on the same config (bf16): decode @4K, prefill 4096 and 32768.
step hf 120 30 env PYTHONUNBUFFERED=1 "$python" "$here/hf_bench.py" --config "$out/config.json" --prompt-len $c4k \
  --decode $dec --prefill-lens $hf_prefill
step profile.prefill.fp8 40 15 "$v4run" profile "$fp8" --bucket prefill --context 0 --tokens $prefill_tokens \
  --repeat 3 --warmup 1 --prime $prime --quiet
step profile.prefill.fp8-wgmma 30 0 "$v4run" profile "$fp8w" --bucket prefill --context 0 --tokens $prefill_tokens \
  --repeat 3 --warmup 1 --prime $prime --quiet

echo
echo "==================== issue 6 ($(($(date +%s) - start)) s; logs: $log)"
"$python" "$here/issue6_report.py" table "$results" | tee "$out/table.txt"
