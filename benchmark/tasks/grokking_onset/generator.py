"""The runs of grokking-onset: hyperparameters drawn per split, trained in batches, cut at t_obs.

A split is a list of run configurations drawn from the split's seed (:func:`run_configs`); the
runs are trained in batches of one shape (:func:`train_runs`) and each becomes an instance unless
it groks inside its observed prefix. Both tracks (train-side signals only, and with the test
curves) are cut from the same trained runs, memoised in-process so building both trains once.

Bit-identical rebuilds: each batch trains with one CPU thread (batches run in parallel processes)
and the batches are fixed (runs in spec order, grouped by shape, at most ``CPU_BATCH`` per batch),
so the same machine type reproduces the stored bytes. Another processor (or a GPU) gives curves equal to float tolerance, not bytes.
"""
from __future__ import annotations

import functools
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .answer import Onset, onset
from .trainer import ACTIVATIONS, Curves, RunConfig, log_grid, train_batch

__all__ = ["SplitDesign", "DESIGNS", "TrainedRun", "run_configs", "train_runs", "trained_split", "observed",
           "TRAIN_KEYS", "TEST_KEYS", "N_CKPT_SHIPPED", "CPU_BATCH", "batches"]

TRAIN_KEYS = ("train_loss", "train_acc", "norm_U", "norm_V", "norm_W", "grad_norm")
TEST_KEYS = ("test_loss", "test_acc")
N_CKPT_SHIPPED = 3        # the last checkpoints at or before t_obs handed to the method
CPU_BATCH = 16            # runs per batch on CPU: faster than 1 here, and fixed for bit-identical builds
GPU_BATCH = 1024          # runs per batch on a GPU: enough to fill it for p ~ 97, width 256


@dataclass(frozen=True)
class SplitDesign:
    """How a split's runs are drawn (log-uniform ranges as (low, high))."""
    n_runs: int
    budget: int
    n_log: int
    n_ckpt: int
    moduli: tuple[int, ...]
    held_out_moduli: tuple[int, ...]   # runs at these moduli form the group "held-out-p"
    widths: tuple[int, ...]
    ops: tuple[str, ...]
    lr: tuple[float, float]
    wd: tuple[float, float]
    wd_zero_share: float
    train_frac: tuple[float, float]
    init_scale: tuple[float, float]
    float64_share: float


# The CPU-sized set: a 2000-step budget, so learning rate and weight decay sit higher and the
# initialisation lower than the GPU set's ranges (3e-4..5e-3, 0.01..3, 0.5..8), which grok far
# beyond 2000 steps; with these about a third of the runs grok within T.
_CPU = dict(budget=2000, n_log=120, n_ckpt=12, widths=(64, 64, 64, 128), ops=("add", "sub", "mul", "sq"),
            lr=(3e-3, 2e-2), wd=(0.3, 3.0), wd_zero_share=0.1, train_frac=(0.4, 0.8), init_scale=(0.5, 2.0),
            float64_share=0.1)
DESIGNS = {
    "dev": SplitDesign(n_runs=48, moduli=(23, 29), held_out_moduli=(), **_CPU),
    "test": SplitDesign(n_runs=160, moduli=(23, 29, 31), held_out_moduli=(31,), **_CPU),
}


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(lo_hi[0]), math.log(lo_hi[1]))))


def _sig(x: float) -> float:
    """Hyperparameters to 4 significant digits: what the instance index shows is what was trained."""
    return float(f"{x:.4g}")


def run_configs(split: str, base_seed: int, design: SplitDesign | None = None) -> list[RunConfig]:
    design = design or DESIGNS[split]
    out = []
    for i in range(design.n_runs):
        seed = int(np.random.SeedSequence([base_seed, i]).generate_state(1)[0])
        rng = np.random.default_rng(seed)
        wd = 0.0 if rng.random() < design.wd_zero_share else _log_uniform(rng, design.wd)
        out.append(RunConfig(
            op=str(design.ops[rng.integers(len(design.ops))]),
            p=int(design.moduli[rng.integers(len(design.moduli))]),
            width=int(design.widths[rng.integers(len(design.widths))]),
            act=str(ACTIVATIONS[rng.integers(len(ACTIVATIONS))]),
            lr=_sig(_log_uniform(rng, design.lr)), wd=_sig(wd),
            train_frac=_sig(float(rng.uniform(*design.train_frac))),
            init_scale=_sig(_log_uniform(rng, design.init_scale)),
            dtype="float64" if rng.random() < design.float64_share else "float32",
            seed=seed))
    return out


def batches(configs: Sequence[RunConfig], batch_size: int = CPU_BATCH) -> list[list[int]]:
    """Indices of the runs trained together: by shape in order of first appearance, then in order,
    at most ``batch_size`` at a time."""
    by_shape: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        by_shape.setdefault(c.shape_key, []).append(i)
    return [idx[k:k + batch_size] for idx in by_shape.values() for k in range(0, len(idx), batch_size)]


def train_runs(configs: Sequence[RunConfig], budget: int, n_log: int, n_ckpt: int, device: str = "cpu",
               batch_size: int = CPU_BATCH, workers: int | None = None, desc: str = "training") -> list[Curves]:
    """Train every run, batched by shape (:func:`batches`), with a progress bar over model-steps.

    On CPU the batches are spread over ``workers`` processes (default: one per core, at most 4),
    each with one thread; one worker (or CUDA) trains in this process and the bar moves every step.
    """
    chunks = batches(configs, batch_size)
    ckpts = log_grid(budget, n_ckpt)
    if workers is None:
        workers = 1 if device != "cpu" else max(1, min(4, os.cpu_count() or 1, len(chunks)))
    out: list[Curves | None] = [None] * len(configs)
    with tqdm(total=len(configs) * (budget + 1), desc=desc, unit="model-step", unit_scale=True,
              mininterval=2.0) as bar:
        if workers == 1:
            for chunk in chunks:
                bar.set_postfix(runs=len(chunk), shape="x".join(map(str, configs[chunk[0]].shape_key)))
                curves = _train_chunk([configs[i] for i in chunk], budget, n_log, ckpts, device, _stepper(bar, len(chunk)))
                for i, c in zip(chunk, curves):
                    out[i] = c
        else:
            ctx = multiprocessing.get_context("spawn")   # no forked torch thread pools
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(_train_chunk, [configs[i] for i in chunk], budget, n_log, ckpts, device):
                           chunk for chunk in chunks}
                for fut in as_completed(futures):
                    chunk = futures[fut]
                    for i, c in zip(chunk, fut.result()):
                        out[i] = c
                    bar.update(len(chunk) * (budget + 1))
    return out  # type: ignore[return-value]


def _train_chunk(configs, budget, n_log, ckpts, device, progress=None) -> list[Curves]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a fixed reduction order: the stored bytes must not depend on the core count
    try:
        return train_batch(configs, budget, n_log, ckpts, device=device, progress=progress)
    finally:
        torch.set_num_threads(threads)


def _stepper(bar: tqdm, runs: int):
    def wrap(steps):
        for t in steps:
            yield t
            bar.update(runs)
    return wrap


@dataclass
class TrainedRun:
    index: int
    config: RunConfig
    curves: Curves
    onset: Onset
    held_out: bool

    @property
    def group(self) -> str:
        return "held-out-p" if self.held_out else self.config.op


@functools.lru_cache(maxsize=4)
def trained_split(split: str, base_seed: int, device: str = "cpu") -> tuple[TrainedRun, ...]:
    """Every run of a split, trained (memoised: both tracks are cut from one training)."""
    design = DESIGNS[split]
    configs = run_configs(split, base_seed, design)
    curves = train_runs(configs, design.budget, design.n_log, design.n_ckpt, device,
                        batch_size=CPU_BATCH if device == "cpu" else GPU_BATCH, desc=f"grokking runs ({split})")
    return tuple(TrainedRun(i, c, cu, onset(cu.steps, cu.metrics["train_acc"], cu.metrics["test_acc"], design.budget),
                            c.p in design.held_out_moduli)
                 for i, (c, cu) in enumerate(zip(configs, curves)))


def observed(run: TrainedRun, with_test: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The public fields and arrays a method gets: configuration and everything logged up to t_obs
    (test curves only ``with_test``), and the last checkpoints of the embeddings up to t_obs."""
    c, cu, o = run.config, run.curves, run.onset
    seen = cu.steps <= o.t_obs
    keys = TRAIN_KEYS + (TEST_KEYS if with_test else ())
    arrays: dict[str, np.ndarray] = {"steps": cu.steps[seen].astype(np.int64)}
    arrays.update({k: cu.metrics[k][seen].astype(np.float32) for k in keys})
    ck = np.flatnonzero(cu.ckpt_steps <= o.t_obs)[-N_CKPT_SHIPPED:]
    arrays["ckpt_steps"] = cu.ckpt_steps[ck].astype(np.int64)
    arrays["ckpt_U"] = cu.ckpt_U[ck].astype(np.float16)
    arrays["ckpt_V"] = cu.ckpt_V[ck].astype(np.float16)
    cfg = asdict(c)
    cfg.pop("seed")
    public = {**cfg, "budget": o.budget, "t_obs": o.t_obs, "n_train": int(round(c.train_frac * c.p * c.p)),
              "n_logged": int(seen.sum()), "n_ckpt": int(ck.size)}
    return public, arrays
