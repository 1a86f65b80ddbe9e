"""Throughput of the grokking-onset batched trainer: model-steps per second for 1 run and for many
runs trained as one batch, on the same device, with the ratio to 1 run and the memory-bandwidth
bound of the model (how far the trainer is from it). Both model kinds: the two-layer MLP and the
one-layer transformer (Nanda et al. 2023: d_model 128, 4 heads, d_mlp 512).

    python perf/grokking_throughput.py                      # CPU: p=23, width 64, 1/16/64 runs
    python perf/grokking_throughput.py --device cuda        # GPU: p=97, width 256, 1/256/1024 runs
    python perf/grokking_throughput.py --model transformer  # CPU: p=23, d_model 128, 1/4/16 runs
    python perf/grokking_throughput.py --model transformer --device cuda   # GPU: p=97, 1/64/256 runs
    python perf/grokking_throughput.py --device cuda --compile --runs 1 256 1024 --steps 200
                                  # eager and torch.compile side by side (CUDA graphs on the GPU), ~3-4 min

With ``--compile`` every batch size is timed eager and with the compiled step (all eager batches
first, so that the compiled step's CUDA-graph memory does not crowd the eager runs), and a summary
gives the ratio compiled/eager and the fraction of the bound each reaches. Timing starts after
``--warmup`` steps of the same call (the compile, CUDA-graph recording, first allocations).

The bound counts the bytes one full-batch step must move at the least (float32): the parameters,
their gradients and the two AdamW moments (read and written), and the activations of the p^2 x
width hidden layer and the p^2 x p logits (written forward, read back and their gradients written
and read backward). Steps/s <= bandwidth / bytes per model-step. For the transformer the same count
over its parameters and the per-pair activations of its batched forward (inputs of a and b, keys and
values at two positions, attention output, residuals, the d_mlp hidden layer, the logits); it does
far more arithmetic per byte than the MLP, so on a GPU it may be compute-bound well below this bound.
On a GPU the script also prints the bound set by the matmuls' arithmetic at the FP32 peak (torch
leaves TF32 off): for the MLP at p = 97, width 256 it is of the order of the bandwidth bound.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmark.tasks.grokking_onset.trainer import RunConfig, train_batch
from benchmark.tasks.grokking_onset.transformer import TransformerConfig, train_transformer_batch

# Peak memory bandwidth (GB/s) of the data-centre GPUs the full set is built on.
GPU_BANDWIDTH_GBS = {"H100": 3350.0, "H200": 4800.0, "A100": 2039.0}
# Peak FP32 (not TF32) arithmetic (TFLOP/s) of the same GPUs (H100: the SXM part).
GPU_FP32_TFLOPS = {"H100": 67.0, "H200": 67.0, "A100": 19.5}


def matmul_flops_per_model_step(p: int, width: int, model: str) -> float:
    """The batched matmuls of one full-batch step: forward, and twice that backward."""
    if model == "mlp":
        macs_per_pair = width * p
    else:                           # W_O, the MLP, the unembedding (keys and values: once per token)
        d, d_mlp = width, 4 * width
        macs_per_pair = d * d + 2 * d * d_mlp + d * p
    return 3 * 2.0 * p * p * macs_per_pair


def bytes_per_model_step(p: int, width: int, itemsize: int = 4) -> float:
    params = 3 * p * width
    optimiser = 7 * params          # read param, grad, m, v; write param, m, v
    hidden = 6 * p * p * width      # pre-activation and activation: write, read, gradient write/read
    logits = 6 * p * p * p          # logits, log-softmax and their gradients
    return float(itemsize * (optimiser + hidden + logits))


def transformer_bytes_per_model_step(p: int, d: int, d_mlp: int, itemsize: int = 4) -> float:
    params = (p + 1) * d + 3 * d + 4 * d * d + 2 * d * d_mlp + d_mlp + d + d * p
    optimiser = 7 * params
    per_pair = 10 * d + 2 * d_mlp + 2 * p   # activations of one pair (written, read, gradient)
    return float(itemsize * (optimiser + 3 * p * p * per_pair))


def device_bandwidth_gbs(device: str) -> tuple[float, str]:
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        for key, bw in GPU_BANDWIDTH_GBS.items():
            if key in name:
                return bw, f"{name} (peak {bw:.0f} GB/s)"
        return float("nan"), f"{name} (bandwidth unknown)"
    # CPU: a copy of a 256 MB array, read + write, best of 3 (a STREAM-copy estimate)
    src = np.ones(32 * 1024 * 1024)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(3))
    return 2 * src.nbytes / best / 1e9, "CPU (measured copy bandwidth)"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def model_steps_per_s(n_runs: int, p: int, width: int, steps: int, device: str, model: str = "mlp",
                      compile: bool = False, compile_mode: str | None = None, warmup: int = 5) -> float:
    """``width``: the MLP's hidden width, or the transformer's d_model (4 heads, d_mlp 4 d_model).
    ``steps`` are timed after ``warmup`` untimed steps of the same training call."""
    rng = np.random.default_rng(0)
    lrs = [float(rng.uniform(1e-3, 1e-2)) for _ in range(n_runs)]
    if model == "mlp":
        configs: list = [RunConfig(op="add", p=p, width=width, act="relu", lr=lr, wd=1.0, train_frac=0.5,
                                   init_scale=1.0, dtype="float32", seed=i) for i, lr in enumerate(lrs)]
        train = train_batch
    else:
        configs = [TransformerConfig(op="add", p=p, lr=lr, wd=1.0, train_frac=0.5, init_scale=1.0, dtype="float32",
                                     seed=i, d_model=width, n_heads=4, d_mlp=4 * width) for i, lr in enumerate(lrs)]
        train = train_transformer_batch
    cuda = device.startswith("cuda")
    started: list[float] = []

    def clock_after_warmup(step_indices):
        for t in step_indices:
            if t == warmup:
                if cuda:
                    torch.cuda.synchronize()
                started.append(time.perf_counter())
            yield t

    train(configs, warmup + steps, 2, [], device=device, progress=clock_after_warmup, compile=compile,
          compile_mode=compile_mode)
    if cuda:
        torch.cuda.synchronize()
    return n_runs * (steps + 1) / (time.perf_counter() - started[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", choices=("mlp", "transformer"), default="mlp")
    ap.add_argument("--p", type=int, default=None, help="modulus (default 97 on GPU, 23 on CPU)")
    ap.add_argument("--width", type=int, default=None,
                    help="MLP hidden width (default 256 on GPU, 64 on CPU); transformer d_model (default 128)")
    ap.add_argument("--runs", type=int, nargs="+", default=None,
                    help="batch sizes (MLP: default 1 256 1024 on GPU, 1 16 64 on CPU; transformer: 1 64 256, 1 4 16)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per batch (default 200 on GPU, 50 on CPU)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--compile", action="store_true",
                    help="also time the torch.compile'd step, side by side with eager, and their ratio")
    ap.add_argument("--compile-mode", default=None,
                    help="torch.compile mode (default: reduce-overhead, i.e. CUDA graphs, on a GPU; default on CPU)")
    ap.add_argument("--no-eager", action="store_true", help="with --compile: time the compiled step only")
    ap.add_argument("--eager-steps", type=int, default=None,
                    help="timed eager steps (default: --steps, at most 50 on a GPU: 1024 eager runs are slow)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps before the timed ones (default 5)")
    args = ap.parse_args()
    gpu = args.device.startswith("cuda")
    p = args.p or (97 if gpu else 23)
    tf = args.model == "transformer"
    width = args.width or (128 if tf else 256 if gpu else 64)
    runs = args.runs or ([1, 64, 256] if tf and gpu else [1, 4, 16] if tf else [1, 256, 1024] if gpu else [1, 16, 64])
    steps = args.steps or (200 if gpu else 20 if tf else 50)
    eager_steps = args.eager_steps or (min(steps, 50) if gpu else steps)
    if args.threads:
        torch.set_num_threads(args.threads)
    bandwidth, what = device_bandwidth_gbs(args.device)
    per_step = transformer_bytes_per_model_step(p, width, 4 * width) if tf else bytes_per_model_step(p, width)
    bound = bandwidth * 1e9 / per_step
    shape = f"transformer d_model={width} heads=4 d_mlp={4 * width}" if tf else f"MLP width={width}"
    print(f"device {args.device}: {what}; threads {torch.get_num_threads()}; p={p} {shape} float32, full batch")
    print(f"memory-bandwidth bound: {per_step / 1e6:.2f} MB per model-step -> at most {bound:,.0f} model-steps/s")
    tflops = next((v for k, v in GPU_FP32_TFLOPS.items() if gpu and k in what), None)
    if tflops:
        flops = matmul_flops_per_model_step(p, width, args.model)
        print(f"FP32 matmul bound: {flops / 1e9:.2f} GFLOP per model-step at {tflops:.0f} TFLOP/s -> at most "
              f"{tflops * 1e12 / flops:,.0f} model-steps/s")
    mode = args.compile_mode or ("reduce-overhead" if gpu else "default")
    variants = ([] if args.compile and args.no_eager else [("eager", False, eager_steps)])
    variants += [(f"compiled ({mode})", True, steps)] if args.compile else []
    rates: dict[tuple[str, int], float] = {}
    for name, compiled, n_steps in variants:
        base = None
        for n in runs:
            try:
                rate = model_steps_per_s(n, p, width, n_steps, args.device, args.model, compile=compiled,
                                         compile_mode=args.compile_mode, warmup=args.warmup)
            except torch.OutOfMemoryError:
                print(f"{name:>26} {n:>5} runs: out of device memory", flush=True)
                torch.cuda.empty_cache()
                continue
            rates[name, n] = rate
            base = base or rate
            print(f"{name:>26} {n:>5} runs: {rate:>10,.0f} model-steps/s   x{rate / base:5.1f} vs {runs[0]} run(s)   "
                  f"{rate / bound:6.1%} of the bound", flush=True)
    if len(variants) == 2:
        (eager, *_), (comp, *_) = variants
        print(f"\n{'runs':>5} {'eager':>10} {'compiled':>10} {'compiled/eager':>15} {'eager/bound':>12} "
              f"{'compiled/bound':>15}")
        for n in runs:
            e, c = rates.get((eager, n), float("nan")), rates.get((comp, n), float("nan"))
            print(f"{n:>5} {e:>10,.0f} {c:>10,.0f} {c / e:>15.2f} {e / bound:>12.1%} {c / bound:>15.1%}")


if __name__ == "__main__":
    main()
