"""Truth by enumeration for rare-behavior F3: sequences per second of the reference enumeration (every
full sequence through the float32 torch model) and of the prefix-table enumerator that builds the
truth, on the same models in the same run, for 1- and 2-layer models, on CPU and on CUDA when
available; near-ties recomputed in float64 included in both. Then the projected time of the
enumerator for vocab**length = 8^8 and 16^8 = 2^32 sequences (at the measured model's rate: a larger
vocabulary widens the first block's one-hot matrix, so vocab 16 runs somewhat slower per sequence).

    python perf/rare_truth_speed.py [--vocab 8] [--length 6] [--big-length 8] [--layers 1 2]
                                    [--width W] [--devices cpu cuda] [--build-env]

--build-env runs in the reference build environment of ``phasebench data build`` (AVX2 kernels,
benchmark/build_env.py), the one the embedded splits are built in: CPU matmuls are slower there.

Both run at --length (their argmax arrays and tie counts are checked identical); the enumerator runs
again at --big-length, whose rate is the one projected. --width defaults to the test split's widths
(64 for one layer, 128 for two). On a shared machine wall-clock rates move with the load (printed with
each figure); the enumerator's rate per CPU-second moves less.

The reference in the issue (H200, eager PyTorch, bf16) is about 1.6e7 sequences/s for a 1-layer
width-64 model; both enumerations here run float32, the precision the truth uses.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _reexec_in_build_env() -> None:
    """With --build-env, run again with the reference build environment set: the kernels are chosen
    when numpy and torch load, so it must be in the environment first (build_env.py is loaded by path:
    the benchmark package imports numpy)."""
    if "--build-env" not in sys.argv:
        return
    spec = importlib.util.spec_from_file_location("_build_env", REPO / "benchmark" / "build_env.py")
    build_env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_env)
    missing = build_env.missing_reference_env()
    if missing:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **missing})


_reexec_in_build_env()

import numpy as np  # noqa: E402

sys.path.insert(0, str(REPO))

from benchmark.tasks.rare_behavior.generator import enumerate_argmax, enumerate_argmax_reference  # noqa: E402
from benchmark.tasks.rare_behavior.models import transformer_arrays  # noqa: E402

PROJECTED = (("8^8", 8 ** 8), ("16^8 = 2^32", 16 ** 8))


def _timed(enumerate_fn, model, vocab: int, length: int, device: str):
    """(argmax, ties, sequences per wall second, per CPU-second of this process, 1-min load average)."""
    import torch

    load = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    argmax, ties = enumerate_fn(model, vocab, length, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    total = vocab ** length
    return argmax, ties, total / wall, total / max(cpu, 1e-9), max(load, os.getloadavg()[0])


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", type=int, default=8)
    ap.add_argument("--length", type=int, default=6, help="length both enumerations run at")
    ap.add_argument("--big-length", type=int, default=8, help="length the enumerator alone runs at, projected")
    ap.add_argument("--layers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ap.add_argument("--build-env", action="store_true", help="in the reference build environment (AVX2 kernels)")
    args = ap.parse_args()
    print(f"F3 truth enumeration: vocab {args.vocab}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'build environment (AVX2 kernels)' if args.build_env else 'default kernels'}, "
          f"devices {' '.join(args.devices)}"
          + (f" ({torch.cuda.get_device_name()})" if "cuda" in args.devices else ""))
    for n_layers in args.layers:
        width = args.width or (64 if n_layers == 1 else 128)
        longest = max(args.length, args.big_length)
        model = transformer_arrays(np.random.default_rng(0), args.vocab, longest, width, n_layers, 2)
        print(f"\n{n_layers} layer(s), width {width}, 2 heads")
        for device in args.devices:
            enumerate_argmax_reference(model, args.vocab, 3, device=device)  # warm-up (CUDA context, kernels)
            enumerate_argmax(model, args.vocab, 3, device=device)
            ref_arg, ref_ties, ref_rate, _, ref_load = _timed(enumerate_argmax_reference, model, args.vocab,
                                                              args.length, device)
            arg, ties, rate, cpu_rate, load = _timed(enumerate_argmax, model, args.vocab, args.length, device)
            same = np.array_equal(arg, ref_arg) and ties == ref_ties
            print(f"  {device:<4} length {args.length} ({args.vocab ** args.length:,} seq): reference "
                  f"{ref_rate:,.0f} seq/s (load {ref_load:.1f}) | prefix-table {rate:,.0f} seq/s (load {load:.1f}) | "
                  f"{rate / ref_rate:.1f}x | {'identical' if same else 'DIFFERENT'} argmax, near-ties "
                  f"{ties} / {ref_ties}")
            if not same:
                raise SystemExit("the enumerator differs from the reference")
            if args.big_length != args.length:
                _, big_ties, rate, cpu_rate, load = _timed(enumerate_argmax, model, args.vocab, args.big_length,
                                                           device)
                print(f"  {device:<4} length {args.big_length} ({args.vocab ** args.big_length:,} seq): prefix-table "
                      f"{rate:,.0f} seq/s, {cpu_rate:,.0f} per CPU-second (load {load:.1f}), {big_ties} near-ties")
            for name, total in PROJECTED:
                print(f"       projected {name:>11} = {total:>13,} seq: prefix-table {_duration(total / rate):>8}, "
                      f"reference {_duration(total / ref_rate):>8}")


if __name__ == "__main__":
    main()
