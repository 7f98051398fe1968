"""Rows and the final table of bench/issue6.sh (issue 6: speed on the H100).

issue6.sh runs each measurement as one step and appends one JSON record per
step to RESULTS (one per line): {"step": NAME, "status": "ok" | "failed" |
"timeout" | "skipped", "secs": S, "note": TEXT, "json": <the step's last JSON
line, or null>, "progress": [the last "prefill: N/M tokens ..." line]}.

usage: python3 bench/issue6_report.py row RESULTS STEP   # one line for a step just measured
       python3 bench/issue6_report.py table RESULTS      # the targets table, then one JSON line

Targets and ceilings are issue 6's: decode <= 1.2x the bytes roofline
(3.0 TB/s), long-context decode <= 1.2x the 4K figure, prefill >= 5x HF,
GEMM / grouped MoE GEMM >= 60% of the tensor-core peak (bf16 798 TFLOP/s,
fp8 twice), batched tokens/s beside the bytes-per-token roofline, kernel
microbenchmarks against their own ceilings (indexer + top-k at 1M: SGLang's
~15 us; compressor: SGLang's 80% of HBM bandwidth). Prefill and the GEMM
rows come twice: with the default wmma GEMM tiles and with the artifacts
compiled with `--tensor-cores wgmma` (steps named *-wgmma*), so the table says
which variant meets the GEMM target; "GEMM kernels" lists each GEMM entry of
the prefill profiles with its share of its own tensor peak. Each profiled
step has its arithmetic ("math": bf16, or fp8 for e4m3 linears and fp4
experts); an fp8 step's peak is 2 x 798 = 1596 TFLOP/s dense e4m3, and a row
mixing bf16 and fp8 steps (an fp8 artifact keeps lm_head and the compressors
in bf16) is measured against the peak-weighted time sum(FLOPs_i / peak_i).
"""
import json
import sys

# (profile step, label) of the prefill profiles, per GEMM variant.
PREFILL_PROFILES = (("profile.prefill.bf16", "bf16"), ("profile.prefill.bf16-wgmma", "bf16 wgmma"),
                    ("profile.prefill.fp8", "fp8+fp4"), ("profile.prefill.fp8-wgmma", "fp8+fp4 wgmma"))
# (bench step, prompt tokens, variant) of the prefill rows.
PREFILL_BENCHES = (("decode.bf16.4k", "4096", ""), ("prefill.bf16.32k", "32768", ""),
                   ("prefill.bf16-wgmma.4k", "4096", "wgmma"), ("prefill.bf16-wgmma.32k", "32768", "wgmma"))

# Issue 6's own figures, used where this run has none of its own.
HF_ISSUE = {"decode_ms_4k": 13.4, "prefill_tokens_per_s": 27.8e3}
PEAK_BF16 = 798e12
PEAK_FP8 = 2 * PEAK_BF16  # dense e4m3 wgmma on the H100 SXM
GEMM_OPS = ("v4.linear", "v4.norm_linear", "v4.linear_swiglu", "v4.grouped_linear", "v4.linear_fp8",
            "v4.linear_compress")
MOE_OPS = ("v4.moe", "v4.moe_fp4")


def load(path):
    records = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                records[r["step"]] = r
    return records


def get(records, step, *keys):
    r = records.get(step)
    value = r.get("json") if r else None
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def fmt(value, spec="%.3f", unit=""):
    return "-" if value is None else (spec % value) + unit


def status_note(records, step):
    r = records.get(step)
    if not r:
        return "not run"
    if r["status"] == "ok":
        return "ok"
    return ("%s%s" % (r["status"], (": " + r["note"]) if r.get("note") else ""))[:90]


def op_totals(records, step, ops):
    rows = get(records, step, "ops") or []
    chosen = [o for o in rows if o["op"] in ops]
    if not chosen:
        return None
    us = sum(o["us"] for o in chosen)
    flops = sum(o["flops"] for o in chosen)
    byts = sum(o["bytes"] for o in chosen)
    # The ops' own ceiling time (max of bytes and FLOPs bounds, per step): the
    # TFLOP/s they could reach at all (bandwidth-bound GEMMs cannot reach the peak).
    ceiling_us = sum(o["ceiling_pct"] * o["us"] / 100.0 for o in chosen)
    return {"us": us, "flops": flops, "bytes": byts, "tflops": flops / us * 1e-6 if us > 0 else 0.0,
            "gbps": byts / us * 1e-3 if us > 0 else 0.0,
            "ceiling_tflops": flops / ceiling_us * 1e-6 if ceiling_us > 0 else None}


def step_rows(records, step, op):
    return [s for s in (get(records, step, "steps") or []) if s["op"] == op]


def step_peak(s):
    """The tensor-core peak of one profiled step's arithmetic."""
    return PEAK_FP8 if s.get("math") == "fp8" else PEAK_BF16


def gemm_peak(records, step, ops):
    """The peak the `ops` steps of a profile reach together: their FLOPs over
    the time each would take at its own peak (bf16 798 or fp8 1596 TFLOP/s)."""
    chosen = [s for s in (get(records, step, "steps") or []) if s["op"] in ops and s["flops"] > 0]
    at_peak = sum(s["flops"] / step_peak(s) for s in chosen)
    return sum(s["flops"] for s in chosen) / at_peak if at_peak > 0 else PEAK_BF16


def targets(records):
    """[(target, ours, hf, ceiling, ratio, verdict)] and the JSON summary."""
    rows, summary = [], {}

    def add(target, ours, hf, ceiling, ratio, verdict, key, value):
        rows.append((target, ours, hf, ceiling, ratio, verdict))
        summary[key] = dict(value, verdict=verdict)

    hf_decode = get(records, "hf", "decode_ms_per_token")
    hf_prefill = get(records, "hf", "prefill") or {}
    hf_source = "this run" if records.get("hf", {}).get("status") == "ok" else "issue figures"

    # 1. Decode at 4K, bf16 and fp8 + fp4, against the bytes roofline.
    decode4k = {}
    for step, label in (("decode.bf16.4k", "bf16"), ("decode.fp8.4k", "fp8+fp4")):
        ms, roof = get(records, step, "decode_ms_per_token"), get(records, step, "roofline_ms")
        decode4k[label] = ms
        ratio = ms / roof if ms and roof else None
        hf = hf_decode if label == "bf16" else None
        if label == "bf16" and hf is None:
            hf = HF_ISSUE["decode_ms_4k"]
        verdict = "-" if ratio is None else ("met" if ratio <= 1.2 else "missed")
        if ratio is not None and label == "bf16":
            verdict += " (%.0f%% of bandwidth; best published 78%%)" % (100.0 / ratio)
        add("decode %s @4K ms (<= 1.2x roofline)" % label, fmt(ms), fmt(hf), fmt(roof), fmt(ratio, "%.2fx"),
            verdict if ms else status_note(records, step), "decode_%s_4k" % label.replace("+", "_"),
            {"ms": ms, "roofline_ms": roof, "ratio": ratio, "hf_ms": hf})

    # 2. Long context: decode within 1.2x of the 4K figure; the 1M prefill; KV bytes per token.
    base = decode4k.get("bf16")
    for step, label in (("decode.bf16.64k", "64K"), ("decode.bf16.256k", "256K"), ("long.bf16.1m", "1M")):
        ms = get(records, step, "decode_ms_per_token")
        context = get(records, step, "context")
        source = "bench"
        if label == "1M" and (ms is None or not get(records, step, "prefill_complete")):
            prof = get(records, "profile.decode.1m", "bucket_us")
            if prof:
                ms, context, source = prof / 1e3, get(records, "profile.decode.1m", "context"), "profile, tiled fill"
        ratio = ms / base if ms and base else None
        verdict = "-" if ratio is None else ("met" if ratio <= 1.2 else "missed")
        where = "" if context is None else " [%d, %s]" % (context, source)
        add("decode @%s ms (<= 1.2x 4K)%s" % (label, where), fmt(ms), "-", fmt(base),
            fmt(ratio, "%.2fx"), verdict if ms else status_note(records, step), "decode_bf16_%s" % label.lower(),
            {"ms": ms, "context": context, "ratio_to_4k": ratio, "source": source})
    r = records.get("long.bf16.1m") or {}
    pre_ms, complete = get(records, "long.bf16.1m", "prefill_ms"), get(records, "long.bf16.1m", "prefill_complete")
    tokens = get(records, "long.bf16.1m", "context")
    if pre_ms is not None:
        ours = "%.1f s for %d tokens%s" % (pre_ms / 1e3, tokens, "" if complete else " (stopped: budget)")
    else:
        ours = (r.get("progress") or status_note(records, "long.bf16.1m"))[:60]
    add("1M-token prefill on one GPU (time)", ours, "OOM at 16K (issue)", "-", "-",
        "met" if complete else "missed", "prefill_1m", {"ms": pre_ms, "tokens": tokens, "complete": bool(complete)})
    kv, kv_doc = get(records, "decode.bf16.4k", "kv_cache_bytes_per_token"), \
        get(records, "decode.bf16.4k", "kv_cache_bytes_per_token_v4_model_md")
    kv_ratio = kv / kv_doc if kv and kv_doc else None
    add("KV cache bytes/token vs V4-MODEL.md", fmt(kv, "%.1f"), "-", fmt(kv_doc, "%.1f"), fmt(kv_ratio, "%.2fx"),
        "-" if kv_ratio is None else ("matches" if abs(kv_ratio - 1) < 0.05 else "differs"), "kv_bytes_per_token",
        {"ours": kv, "v4_model_md": kv_doc})

    # 3. Prefill >= 5x HF; GEMMs >= 60% of peak (profile of the prefill bucket).
    for step, n, variant in PREFILL_BENCHES:
        ours = get(records, step, "prefill_tokens_per_s")
        entry = hf_prefill.get(n) or {}
        hf = entry.get("tokens_per_s")
        hf_cell = "OOM" if entry.get("oom") else fmt(hf, "%.0f")
        if hf is None and not entry.get("oom") and n == "4096":
            hf, hf_cell = HF_ISSUE["prefill_tokens_per_s"], "%.0f (issue)" % HF_ISSUE["prefill_tokens_per_s"]
        ratio = ours / hf if ours and hf else None
        if entry.get("oom"):
            verdict = "met (HF out of memory)" if ours else status_note(records, step)
        else:
            verdict = "-" if ratio is None else ("met" if ratio >= 5 else "missed")
        add("prefill %s tokens/s%s (>= 5x HF)" % (n, " " + variant if variant else ""), fmt(ours, "%.0f"), hf_cell,
            fmt(hf and 5 * hf, "%.0f"), fmt(ratio, "%.2fx"), verdict if ours else status_note(records, step),
            "prefill_%s%s" % (n, "_" + variant if variant else ""),
            {"tokens_per_s": ours, "hf_tokens_per_s": hf, "hf_oom": bool(entry.get("oom")), "ratio": ratio})
    for step, label in PREFILL_PROFILES:
        for ops, name in ((GEMM_OPS, "dense GEMMs"), (MOE_OPS, "grouped MoE GEMM")):
            peak = gemm_peak(records, step, ops)
            t = op_totals(records, step, ops)
            share = t["tflops"] * 1e12 / peak if t else None
            verdict = "-" if share is None else ("met" if share >= 0.6 else "missed")
            bound = t and t["ceiling_tflops"]
            if share is not None and share < 0.6 and bound and bound < 0.6 * peak / 1e12:
                verdict += " (bytes-bound here: ceiling %.0f TFLOP/s)" % bound
            add("%s %s TFLOP/s (>= 60%% of %.0f)" % (name, label, peak / 1e12), fmt(t and t["tflops"], "%.1f"),
                "-", "%.1f" % (0.6 * peak / 1e12), fmt(share and 100 * share, "%.0f%%"), verdict,
                "%s_%s" % (name.replace(" ", "_").lower(), label.replace("+", "_").replace(" ", "_")),
                {"tflops": t and t["tflops"], "peak_tflops": peak / 1e12, "share": share,
                 "ceiling_tflops": bound})

    # 4. Batched decode: tokens/s beside the bytes-per-token roofline.
    for b in (1, 8, 32, 64):
        step = "batch.bf16.%d" % b
        tps, roof = get(records, step, "decode_tokens_per_s"), get(records, step, "roofline_ms")
        roof_tps = b * 1e3 / roof if roof else None
        ratio = tps / roof_tps if tps and roof_tps else None
        add("batched decode B=%d tokens/s (roofline tokens/s)" % b, fmt(tps, "%.0f"), "-", fmt(roof_tps, "%.0f"),
            fmt(ratio and 100 * ratio, "%.0f%%"), "measured" if tps else status_note(records, step),
            "batch_%d" % b, {"tokens_per_s": tps, "roofline_tokens_per_s": roof_tps})

    # 5. Kernel microbenchmarks at 1M (profile of the decode bucket) and the compressor.
    indexer = step_rows(records, "profile.decode.1m", "v4.indexer_topk")
    if indexer:
        us = sum(s["us"] for s in indexer)
        add("indexer + top-k @1M us (SGLang ~15)", "%.1f" % us, "-", "15", "%.2fx" % (us / 15.0),
            "met" if us <= 15.0 else "missed", "indexer_1m", {"us": us})
    else:
        add("indexer + top-k @1M us (SGLang ~15)", "-", "-", "15", "-", status_note(records, "profile.decode.1m"),
            "indexer_1m", {"us": None})
    for op, name, floor in (("v4.attention", "attention @1M", None), ("v4.linear_compress", "compressor @1M", 0.8)):
        step = "profile.decode.1m"
        rows_ = step_rows(records, step, op)
        if rows_:
            us = sum(s["us"] for s in rows_)
            gbps = sum(s["bytes"] for s in rows_) / us * 1e-3 if us > 0 else 0.0
            pct = sum(s["ceiling_us"] for s in rows_) / us * 100 if us > 0 else 0.0
            verdict = ("met" if pct >= 100 * floor else "missed") if floor else "%.0f%% of its ceiling" % pct
            add("%s GB/s (%s)" % (name, "SGLang: 80% of HBM" if floor else "bandwidth-bound"),
                "%.0f" % gbps, "-", "%.0f" % (3000 * (floor or 1)), "%.0f%%" % pct, verdict,
                op.replace("v4.", "") + "_1m", {"us": us, "gb_per_s": gbps, "pct": pct})
        else:
            add("%s GB/s" % name, "-", "-", "-", "-", status_note(records, step),
                op.replace("v4.", ""), {"gb_per_s": None})
    return rows, summary


def where_time_goes(records, step, top=4):
    ops = get(records, step, "ops") or []
    total = sum(o["us"] for o in ops)
    if not ops or total <= 0:
        return None
    parts = ["%s %.0f%% (%.1f us, %.0f%% of ceiling)" % (o["op"], 100 * o["us"] / total, o["us"], o["ceiling_pct"])
             for o in ops[:top]]
    return "; ".join(parts)


def gemm_kernels(records, step, top=6):
    """The GEMM entries of a prefill profile (dense GEMMs and the grouped MoE
    GEMM), summed over the layers that share an entry, slowest first:
    [(kernel, op, launches, us, TFLOP/s, % of its tensor peak, "bf16" | "fp8": which peak)]."""
    by_kernel = {}
    for s in get(records, step, "steps") or []:
        if s["op"] in GEMM_OPS + MOE_OPS:
            k = by_kernel.setdefault(s.get("kernel", s["op"]),
                                     {"op": s["op"], "n": 0, "us": 0.0, "flops": 0.0, "peak": step_peak(s),
                                      "math": "fp8" if step_peak(s) == PEAK_FP8 else "bf16"})
            k["n"] += 1
            k["us"] += s["us"]
            k["flops"] += s["flops"]
    rows = []
    for kernel, k in sorted(by_kernel.items(), key=lambda kv: -kv[1]["us"])[:top]:
        tflops = k["flops"] / k["us"] * 1e-6 if k["us"] > 0 else 0.0
        rows.append((kernel, k["op"], k["n"], k["us"], tflops, 100.0 * tflops * 1e12 / k["peak"], k["math"]))
    return rows


def target3_verdict(summary):
    """One line: which GEMM variant meets target 3 (>= 60% of the tensor peak)."""
    parts = []
    for _, label in PREFILL_PROFILES:
        key = label.replace("+", "_").replace(" ", "_")
        dense, moe = summary.get("dense_gemms_" + key, {}), summary.get("grouped_moe_gemm_" + key, {})
        if dense.get("share") is None and moe.get("share") is None:
            continue
        cell = lambda t: "-" if t.get("share") is None else "%.0f%%" % (100 * t["share"])
        met = all(t.get("share") is not None and t["share"] >= 0.6 for t in (dense, moe))
        parts.append("%s: dense %s, MoE %s -> %s" % (label, cell(dense), cell(moe), "met" if met else "missed"))
    return "; ".join(parts) if parts else "no prefill profile measured"


def print_row(records, step):
    r = records.get(step)
    if not r:
        print("issue6: %s: no record" % step)
        return
    j = r.get("json") or {}
    head = "issue6: %-22s %-8s %5ds  " % (step, r["status"], r["secs"])
    if "decode_ms_per_token" in j:
        text = ("context %d: prefill %.1f tokens/s%s; decode %.3f ms/step, %.1f tokens/s; roofline %.3f ms "
                "(ratio %.2f); kv %.1f B/token" % (
                    j["context"], j["prefill_tokens_per_s"], "" if j.get("prefill_complete", True) else " (partial)",
                    j["decode_ms_per_token"], j["decode_tokens_per_s"], j["roofline_ms"], j["roofline_ratio"],
                    j.get("kv_cache_bytes_per_token", 0)))
    elif "bucket_us" in j:
        text = "%s at context %d: %.1f us alone, steps %.1f us; top: %s" % (
            j["bucket"], j["context"], j["bucket_us"], j["steps_us"], where_time_goes(records, step, 3))
    elif j.get("bench") == "hf":
        pre = ", ".join("%s: %s" % (n, "OOM" if e.get("oom") else "%.0f tokens/s" % e["tokens_per_s"])
                        for n, e in sorted(j.get("prefill", {}).items(), key=lambda kv: int(kv[0])))
        text = "HF %s: decode %s ms/token; prefill %s" % (j.get("transformers"), fmt(j.get("decode_ms_per_token")), pre)
    else:
        text = r.get("note") or (r.get("progress") or "")
    print(head + text)
    sys.stdout.flush()


def print_table(records):
    rows, summary = targets(records)
    widths = [60, 22, 18, 12, 8]
    header = ("target", "ours", "HF", "roofline", "ratio", "met/missed")
    line = "%-60s %22s %18s %12s %8s  %s"
    print(line % header)
    for row in rows:
        print(line % tuple(str(c)[:w] if i < 5 else str(c) for i, (c, w) in enumerate(zip(row, widths + [0]))))
    print()
    print("where the time goes (profile, per op: share of the bucket, time, % of its own ceiling):")
    for step in ("profile.decode.4k", "profile.decode.1m") + tuple(p for p, _ in PREFILL_PROFILES):
        text = where_time_goes(records, step)
        print("  %-26s %s" % (step, text or status_note(records, step)))
    print()
    print("GEMM kernels (prefill profiles; per entry over its layers: launches, time, TFLOP/s, %% of its peak: "
          "bf16 %.0f, fp8 %.0f):" % (PEAK_BF16 / 1e12, PEAK_FP8 / 1e12))
    for step, label in PREFILL_PROFILES:
        rows = gemm_kernels(records, step)
        if not rows:
            print("  %-14s %s" % (label, status_note(records, step)))
        for kernel, op, n, us, tflops, pct, math in rows:
            print("  %-14s %-18s %3dx %9.1f us %7.1f TFLOP/s %5.1f%% of %-4s  %s"
                  % (label, op, n, us, tflops, pct, math, kernel[:90]))
    print("target 3 (GEMMs >= 60%% of the tensor peak) by variant: %s" % target3_verdict(summary))
    print(json.dumps({"bench": "issue6", "targets": summary, "target3": target3_verdict(summary),
                      "steps": {k: {"status": v["status"], "secs": v["secs"]} for k, v in records.items()}}))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "row":
        print_row(load(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "table":
        print_table(load(sys.argv[2]))
    else:
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
