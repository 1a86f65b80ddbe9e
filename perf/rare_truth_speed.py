"""Truth by enumeration for rare-behavior F3: sequences per second through the float32 torch model
(near-ties recomputed in float64 included), on CPU and on CUDA when available.

    python perf/rare_truth_speed.py [--vocab 8] [--length 6] [--width 64] [--layers 1]

The reference in the issue (H200, eager PyTorch, bf16) is about 1.6e7 sequences/s for a 1-layer
width-64 model; this script runs float32, the precision the truth uses.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.tasks.rare_behavior.generator import enumerate_argmax  # noqa: E402
from benchmark.tasks.rare_behavior.models import transformer_arrays  # noqa: E402


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=8)
    ap.add_argument("--length", type=int, default=6)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1 << 16)
    args = ap.parse_args()
    model = transformer_arrays(np.random.default_rng(0), args.vocab, args.length, args.width, args.layers, 2)
    total = args.vocab ** args.length
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"F3 enumeration: vocab {args.vocab}, length {args.length} ({total:,} sequences), width {args.width}, "
          f"{args.layers} layer(s), batch {args.batch}, torch threads {torch.get_num_threads()}")
    rates = {}
    for device in devices:
        enumerate_argmax(model, args.vocab, min(args.length, 3), device=device)  # warm-up
        start = time.perf_counter()
        _, ties = enumerate_argmax(model, args.vocab, args.length, device=device, batch=args.batch)
        if device == "cuda":
            torch.cuda.synchronize()
        rates[device] = total / (time.perf_counter() - start)
        print(f"{device:<6}{rates[device]:>14,.0f} sequences/s   ({ties} near-ties recomputed in float64)")
    if "cuda" in rates:
        print(f"cuda / cpu: {rates['cuda'] / rates['cpu']:.1f}x")


if __name__ == "__main__":
    main()
