#!/usr/bin/env python3
"""Copies a checkpoint directory with every F32 tensor rounded to bf16 (nearest even).

Why: it separates what bf16 WEIGHTS alone do to a model's logits from what a
bf16 kernel does. Compile the copy for --target cpu (fp32 arithmetic) and verify
it against the original golden: that error is the checkpoint's own sensitivity
to weight rounding, the floor a bf16 GPU artifact is judged against.
Pure Python (no numpy): the conformance checkpoints are small.

  tools/scripts/round_weights_bf16.py tests/conformance/tiny-mixed /tmp/tm-bf16w
  v4c compile /tmp/tm-bf16w --target cpu -o /tmp/tm-bf16w.v4a
  v4run verify /tmp/tm-bf16w.v4a --golden tests/conformance/tiny-mixed/golden.safetensors
"""
import array
import json
import pathlib
import shutil
import struct
import sys


def round_to_bf16(words):
    for i, bits in enumerate(words):
        if (bits & 0x7F800000) == 0x7F800000:  # inf / nan: keep (truncate the payload)
            words[i] = bits & 0xFFFF0000
            continue
        words[i] = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16) & 0xFFFFFFFF


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: round_weights_bf16.py CHECKPOINT_DIR OUT_DIR")
    source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    model = source / "model.safetensors"
    if not model.is_file():
        sys.exit(f"round_weights_bf16.py: {model} does not exist")
    target.mkdir(parents=True, exist_ok=True)
    for extra in ("config.json", "golden.safetensors"):
        if (source / extra).is_file():
            shutil.copy(source / extra, target / extra)
    blob = model.read_bytes()
    header_bytes = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + header_bytes])
    data = bytearray(blob[8 + header_bytes:])
    rounded = 0
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        words = array.array("I")
        words.frombytes(bytes(data[begin:end]))
        if sys.byteorder != "little":
            words.byteswap()
        round_to_bf16(words)
        if sys.byteorder != "little":
            words.byteswap()
        data[begin:end] = words.tobytes()
        rounded += 1
    (target / "model.safetensors").write_bytes(blob[:8 + header_bytes] + bytes(data))
    print(f"round_weights_bf16.py: {rounded} f32 tensors rounded to bf16 -> {target}")


if __name__ == "__main__":
    main()
