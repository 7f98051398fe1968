"""HF transformers' DeepseekV4ForCausalLM on one GPU: prefill tokens/s and decode ms/token.

Random weights (the config's own init), bf16, for the config an artifact was
compiled from (`v4run config ARTIFACT`). Times with CUDA events after a
warm-up; decode is the median over steps at the prompt's context. With
--prefill-lens, each listed prompt length is also prefilled (one model, one
process); a length that runs out of device memory is reported as
{"oom": true} and the others still run. Prints a short report, then one JSON
line.

usage: python3 bench/hf_bench.py --config config.json [--prompt-len 4096] [--decode 32]
                                 [--prefill-lens 4096,32768]
"""
import argparse
import json
import statistics
import sys

import torch


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="config.json (transformers form)")
    p.add_argument("--prompt-len", type=int, default=4096)
    p.add_argument("--decode", type=int, default=32, help="timed decode steps (0: none)")
    p.add_argument("--prefill-lens", default="", help="more prompt lengths to prefill, e.g. 4096,32768")
    p.add_argument("--warmup", type=int, default=3, help="decode steps before timing")
    p.add_argument("--prefill-repeats", type=int, default=3)
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--attn", default="sdpa", help="attention implementation (falls back to eager)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def build_model(args):
    import transformers
    from transformers import DeepseekV4Config, DeepseekV4ForCausalLM

    with open(args.config) as f:
        fields = json.load(f)
    fields.pop("model_type", None)  # a class attribute, not an argument
    config = DeepseekV4Config(**fields)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    torch.manual_seed(args.seed)
    # Built on the GPU directly in the target dtype: a float32 copy of a
    # V4-Flash-sized layer pair would not fit next to the bf16 one.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    attn = args.attn
    try:
        try:
            config._attn_implementation = attn
            with torch.device("cuda"):
                model = DeepseekV4ForCausalLM(config)
        except (ValueError, ImportError, NotImplementedError) as e:
            print(f"hf_bench: attention '{attn}' unavailable ({e}); using eager", file=sys.stderr)
            attn = "eager"
            config._attn_implementation = attn
            with torch.device("cuda"):
                model = DeepseekV4ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    return model, attn, transformers.__version__


def timed(fn):
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    out = fn()
    end.record()
    end.synchronize()
    return out, start.elapsed_time(end)


def is_oom(error):
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def prefill_only(model, vocab, length, repeats, seed):
    """{"ms", "tokens_per_s"} of prefilling `length` random ids, or {"oom": True}."""
    g = torch.Generator().manual_seed(seed)
    try:
        ids = torch.randint(0, vocab, (1, length), generator=g).cuda()
        times = []
        with torch.inference_mode():
            for _ in range(repeats):
                out, ms = timed(lambda: model(ids, use_cache=True))
                del out
                times.append(ms)
        ms = statistics.median(times)
        return {"ms": ms, "tokens_per_s": length / (ms / 1e3)}
    except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
        if not is_oom(e):
            raise
        return {"oom": True}
    finally:
        torch.cuda.empty_cache()


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        print("hf_bench: no CUDA device", file=sys.stderr)
        return 2
    model, attn, version = build_model(args)
    params = sum(p.numel() for p in model.parameters())
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, vocab, (1, args.prompt_len), generator=g).cuda()

    with torch.inference_mode():
        # Warm-up: a short prefill and a few decode steps (kernels, allocator).
        out = model(ids[:, : min(256, args.prompt_len)], use_cache=True)
        pkv = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        for _ in range(2):
            out = model(nxt, past_key_values=pkv, use_cache=True)
            pkv = out.past_key_values
            nxt = out.logits[:, -1:].argmax(-1)
        del out, pkv
        torch.cuda.synchronize()

        prefill_ms = []
        for _ in range(args.prefill_repeats):
            out, ms = timed(lambda: model(ids, use_cache=True))
            prefill_ms.append(ms)
            if len(prefill_ms) < args.prefill_repeats:
                del out
        pkv = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        del out

        decode_ms = []
        out = None
        for step in range(args.warmup + args.decode):
            out, ms = timed(lambda: model(nxt, past_key_values=pkv, use_cache=True))
            pkv = out.past_key_values
            nxt = out.logits[:, -1:].argmax(-1)
            if step >= args.warmup:
                decode_ms.append(ms)

    prefill = statistics.median(prefill_ms)
    decode = statistics.median(decode_ms) if decode_ms else None
    out = pkv = None  # free the 4K cache before the longer prefills
    torch.cuda.empty_cache()
    prefills = {str(args.prompt_len): {"ms": prefill, "tokens_per_s": args.prompt_len / (prefill / 1e3)}}
    for length in [int(n) for n in args.prefill_lens.split(",") if n.strip()]:
        if str(length) not in prefills:
            prefills[str(length)] = prefill_only(model, vocab, length, args.prefill_repeats, args.seed + 2)
    result = {
        "bench": "hf",
        "device": torch.cuda.get_device_name(),
        "transformers": version,
        "torch": torch.__version__,
        "dtype": args.dtype,
        "attn": attn,
        "params": params,
        "prompt_len": args.prompt_len,
        "decode_steps": args.decode,
        "prefill_ms": prefill,
        "prefill_tokens_per_s": args.prompt_len / (prefill / 1e3),
        "prefill": prefills,
        "decode_ms_per_token": decode,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    print(f"hf: {result['device']}, transformers {version}, {args.dtype}, attention {attn}, {params / 1e9:.2f}B params")
    print(f"hf prefill: {args.prompt_len} tokens in {prefill:.2f} ms: {result['prefill_tokens_per_s']:.1f} tokens/s")
    if decode is not None:
        print(f"hf decode: median {decode:.3f} ms/token over {args.decode} steps at context {args.prompt_len}")
    for length, entry in prefills.items():
        if length != str(args.prompt_len):
            text = "out of memory" if entry.get("oom") else f"{entry['tokens_per_s']:.1f} tokens/s"
            print(f"hf prefill: {length} tokens: {text}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
