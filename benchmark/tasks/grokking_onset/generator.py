"""The runs of grokking-onset: hyperparameters drawn per split, trained in batches, cut at t_obs.

A split is a list of run configurations drawn from the split's seed (:func:`run_configs`): MLP runs
(:class:`~.trainer.RunConfig`) and a smaller subset of one-layer transformers in the configuration
of Nanda et al. 2023 (:class:`~.transformer.TransformerConfig`), each architecture with its own
budget (:class:`~.design.Schedule`; the ranges drawn from are in :mod:`.design`). The runs are
trained in batches of one shape (:func:`train_runs`) and each becomes an instance unless it groks
inside its observed prefix. Both tracks (train-side signals only, and with the test curves) are cut
from the same trained runs, memoised in-process so building both trains once. What a method sees is
uniform across architectures (:func:`observed`): an ``architecture`` field, per-layer weight norms
under generic names (:func:`layer_norms`) and checkpoints of the inputs of a and b.

Bit-identical rebuilds: each batch trains with one CPU thread (batches run in parallel processes)
and the batches are fixed (runs in spec order, grouped by shape, at most ``CPU_BATCH`` per batch),
so the same machine type reproduces the stored bytes. Another processor (or a GPU) gives curves
equal to float tolerance, not bytes. The dev split takes about an hour of training on two CPU cores,
so its built files are committed (the dataset card says how to rebuild them).
"""
from __future__ import annotations

import functools
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any, Sequence, cast

import numpy as np
import torch
from tqdm import tqdm

from ...split_secret import SplitSecret
from .answer import Onset, onset
from .design import DESIGNS, Schedule, SplitDesign, design_for
from .trainer import Curves, RunConfig, log_grid, train_batch
from .transformer import TransformerConfig, train_transformer_batch

__all__ = ["ARCHITECTURES", "AnyConfig", "TrainedRun", "architecture_of", "config_params", "config_from_params",
           "schedule_of", "run_configs", "train_runs", "train_chunk", "trained_split", "observed", "layer_norms",
           "TRAIN_KEYS", "NORM_KEYS", "TEST_KEYS", "N_CKPT_SHIPPED", "CPU_BATCH", "GPU_BATCH", "GPU_MAX_ELEMENTS",
           "batches", "activation_elements", "run_arrays"]

ARCHITECTURES = ("mlp", "transformer")
AnyConfig = RunConfig | TransformerConfig
#: per-layer weight norms under names every architecture has (:func:`layer_norms` says what each sums)
NORM_KEYS = ("norm_embed", "norm_hidden", "norm_unembed")
TRAIN_KEYS = ("train_loss", "train_acc", *NORM_KEYS, "grad_norm")
TEST_KEYS = ("test_loss", "test_acc")
N_CKPT_SHIPPED = 3        # the last checkpoints at or before t_obs handed to the method
CPU_BATCH = 16            # runs per batch on CPU: faster than 1 here, and fixed for bit-identical builds
GPU_BATCH = 1024          # runs per batch on a GPU: enough to fill it for p ~ 97, width 256
# Elements of the largest activation a GPU batch may hold (2^31 float32: 8.6 GB; backward keeps a few
# such tensors). 1024 MLP runs at p = 113, width 512 would need 6.7e9, more than an H100 holds.
GPU_MAX_ELEMENTS = 2 ** 31


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(lo_hi[0]), math.log(lo_hi[1]))))


def _sig(x: float) -> float:
    """Hyperparameters to 4 significant digits: what the instance index shows is what was trained."""
    return float(f"{x:.4g}")


def architecture_of(cfg: AnyConfig) -> str:
    return "transformer" if isinstance(cfg, TransformerConfig) else "mlp"


def config_params(cfg: AnyConfig) -> dict[str, Any]:
    """The run's configuration without its seed, with its ``architecture``: what the instance index
    and the answers record, and what :func:`config_from_params` reads back."""
    return {"architecture": architecture_of(cfg), **{k: v for k, v in asdict(cfg).items() if k != "seed"}}


def config_from_params(params: dict[str, Any], seed: int) -> AnyConfig:
    fields = dict(params)
    arch = fields.pop("architecture", "mlp")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    return (TransformerConfig if arch == "transformer" else RunConfig)(**fields, seed=seed)


def schedule_of(design: SplitDesign, cfg: AnyConfig) -> Schedule:
    if architecture_of(cfg) == "transformer":
        if design.transformers is None:
            raise ValueError("a transformer run in a split design without a transformer subset")
        return design.transformers.schedule
    return design.schedule


def _run_seed(base_seed: int, index: int) -> int:
    """The old derivation (32 bits, no task in it), kept for the committed version-2 dev split only."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1)[0])


@dataclass(frozen=True)
class KeyedRunSeeds:
    """Run seeds from a split's key: 256 bits each, labelled with the task family, so that no other
    task's draws share them. Both tracks use the same runs (they differ in what they show)."""
    secret: SplitSecret
    split: str

    def __call__(self, index: int) -> int:
        return self.secret.seed("grokking-onset", self.split, "run", index)


RunSeeds = int | KeyedRunSeeds  # an int: the old derivation from that base seed


def run_configs(split: str, seeds: RunSeeds, design: SplitDesign | None = None) -> list[AnyConfig]:
    """The split's runs: ``design.n_runs`` MLP runs (indices 0..n-1), then its transformer runs, each
    drawn from its own seed (``seeds(index)``, or the old derivation from an int base seed)."""
    design = design or DESIGNS[split]

    def _seed(i: int) -> int:
        return _run_seed(seeds, i) if isinstance(seeds, int) else seeds(i)

    out: list[AnyConfig] = []
    for i in range(design.n_runs):
        seed = _seed(i)
        rng = np.random.default_rng(seed)
        wd = 0.0 if rng.random() < design.wd_zero_share else _log_uniform(rng, design.wd)
        out.append(RunConfig(
            op=str(design.ops[rng.integers(len(design.ops))]),
            p=int(design.moduli[rng.integers(len(design.moduli))]),
            width=int(design.widths[rng.integers(len(design.widths))]),
            act=str(design.acts[rng.integers(len(design.acts))]),
            lr=_sig(_log_uniform(rng, design.lr)), wd=_sig(wd),
            train_frac=_sig(float(rng.uniform(*design.train_frac))),
            init_scale=_sig(_log_uniform(rng, design.init_scale)),
            dtype="float64" if rng.random() < design.float64_share else "float32",
            seed=seed))
    tf = design.transformers
    if tf is None:
        return out
    for i in range(design.n_runs, design.n_runs + tf.n_runs):
        seed = _seed(i)
        rng = np.random.default_rng(seed)
        wd = 0.0 if rng.random() < tf.wd_zero_share else _log_uniform(rng, tf.wd)
        out.append(TransformerConfig(
            op=str(design.ops[rng.integers(len(design.ops))]),
            p=int(tf.moduli[rng.integers(len(tf.moduli))]),
            lr=_sig(_log_uniform(rng, tf.lr)), wd=_sig(wd),
            train_frac=_sig(float(rng.uniform(*tf.train_frac))),
            init_scale=_sig(_log_uniform(rng, tf.init_scale)),
            dtype="float64" if rng.random() < tf.float64_share else "float32",
            seed=seed, d_model=tf.d_model, n_heads=tf.n_heads, d_mlp=tf.d_mlp))
    return out


def activation_elements(cfg: AnyConfig) -> int:
    """Elements of a run's largest activation in one full-batch step: what bounds a GPU batch."""
    if isinstance(cfg, TransformerConfig):
        return cfg.p * cfg.p * 3 * max(cfg.d_mlp, cfg.d_model)
    return cfg.p * cfg.p * max(cfg.width, cfg.p)


def batches(configs: Sequence[AnyConfig], batch_size: int = CPU_BATCH,
            max_elements: int | None = None) -> list[list[int]]:
    """Indices of the runs trained together: by shape in order of first appearance, then in order,
    at most ``batch_size`` at a time, and with ``max_elements`` at most that many activation
    elements (:func:`activation_elements`) per batch, at least one run."""
    by_shape: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        by_shape.setdefault(c.shape_key, []).append(i)
    out = []
    for idx in by_shape.values():
        size = batch_size
        if max_elements is not None:
            size = max(1, min(batch_size, max_elements // activation_elements(configs[idx[0]])))
        out += [idx[k:k + size] for k in range(0, len(idx), size)]
    return out


# Relative CPU time of one model-step, to start the longest batches first (the transformer's is
# 10-15 times the MLP's: the dataset card's throughput figures). Only the order of the work
# depends on it, never a result.
_STEP_COST = {"mlp": 1.0, "transformer": 15.0}


def train_runs(configs: Sequence[AnyConfig], schedules: Sequence[Schedule], device: str = "cpu",
               batch_size: int = CPU_BATCH, workers: int | None = None, desc: str = "training",
               max_elements: int | None = None, compile: bool = False) -> list[Curves]:
    """Train every run on its own schedule (``schedules[i]`` for ``configs[i]``), batched by shape
    (:func:`batches`), with a progress bar over model-steps.

    On CPU the batches are spread over ``workers`` processes (default: one per core, at most 4),
    each with one thread, the longest first; one worker (or CUDA) trains in this process and the bar
    moves every step. ``max_elements`` caps a batch's activations (:func:`batches`); ``compile``
    trains with the compiled step (the GPU build: the issue's throughput needs it).
    """
    if len(schedules) != len(configs):
        raise ValueError(f"train_runs: {len(configs)} configs but {len(schedules)} schedules")
    chunks = batches(configs, batch_size, max_elements)
    for chunk in chunks:
        if len({schedules[i] for i in chunk}) != 1:
            raise ValueError(f"train_runs: runs {chunk} share a shape but not a schedule")
    chunks.sort(key=lambda c: -len(c) * schedules[c[0]].budget * _STEP_COST[architecture_of(configs[c[0]])])
    if workers is None:
        workers = 1 if device != "cpu" else max(1, min(4, os.cpu_count() or 1, len(chunks)))
    out: list[Curves | None] = [None] * len(configs)
    with tqdm(total=sum(s.budget + 1 for s in schedules), desc=desc, unit="model-step", unit_scale=True,
              mininterval=2.0) as bar:
        if workers == 1:
            for chunk in chunks:
                bar.set_postfix(runs=len(chunk), shape="x".join(map(str, configs[chunk[0]].shape_key)))
                curves = train_chunk([configs[i] for i in chunk], schedules[chunk[0]], device,
                                     _stepper(bar, len(chunk)), compile=compile)
                for i, c in zip(chunk, curves):
                    out[i] = c
        else:
            ctx = multiprocessing.get_context("spawn")   # no forked torch thread pools
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(train_chunk, [configs[i] for i in chunk], schedules[chunk[0]], device,
                                       None, compile):
                           chunk for chunk in chunks}
                for fut in as_completed(futures):
                    chunk = futures[fut]
                    for i, c in zip(chunk, fut.result()):
                        out[i] = c
                    bar.update(len(chunk) * (schedules[chunk[0]].budget + 1))
    return out  # type: ignore[return-value]


def train_chunk(configs: Sequence[AnyConfig], schedule: Schedule, device: str = "cpu",
                progress=None, compile: bool = False) -> list[Curves]:
    """Train one batch (runs of one shape and architecture) on ``schedule``, with one CPU thread."""
    ckpts = log_grid(schedule.budget, schedule.n_ckpt)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a fixed reduction order: the stored bytes must not depend on the core count
    try:
        if architecture_of(configs[0]) == "transformer":   # a batch holds one architecture
            return train_transformer_batch(cast(Sequence[TransformerConfig], configs), schedule.budget,
                                           schedule.n_log, ckpts, device=device, progress=progress, compile=compile)
        return train_batch(cast(Sequence[RunConfig], configs), schedule.budget, schedule.n_log, ckpts,
                           device=device, progress=progress, compile=compile)
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
    config: AnyConfig
    curves: Curves
    onset: Onset
    held_out: bool

    @property
    def architecture(self) -> str:
        return architecture_of(self.config)

    @property
    def group(self) -> str:
        return "held-out-p" if self.held_out else self.config.op


@functools.lru_cache(maxsize=4)
def trained_split(split: str, seeds: RunSeeds, device: str = "cpu", scale: str = "embedded") -> tuple[TrainedRun, ...]:
    """Every run of a split, trained (memoised: both tracks are cut from one training).

    On CPU: batches of ``CPU_BATCH``, one thread each (the committed bytes). Elsewhere (CUDA): batches
    of up to ``GPU_BATCH`` runs within ``GPU_MAX_ELEMENTS``, with the compiled step."""
    design = design_for(split, scale)
    configs = run_configs(split, seeds, design)
    schedules = [schedule_of(design, c) for c in configs]
    on_cpu = device == "cpu"
    # The GPU-sized set has 16 MLP shapes (2 moduli, 4 widths, 2 precisions), two activations and
    # ragged last batches: more graphs than dynamo's default 8 recompiles of one function, past which
    # it would fall back to eager without failing.
    with torch._dynamo.config.patch(recompile_limit=max(64, torch._dynamo.config.recompile_limit)):
        curves = train_runs(configs, schedules, device, batch_size=CPU_BATCH if on_cpu else GPU_BATCH,
                            max_elements=None if on_cpu else GPU_MAX_ELEMENTS, compile=not on_cpu,
                            desc=f"grokking runs ({split}, {scale})")
    return tuple(TrainedRun(i, c, cu, onset(cu.steps, cu.metrics["train_acc"], cu.metrics["test_acc"], s.budget),
                            c.p in design.held_out_moduli)
                 for i, (c, s, cu) in enumerate(zip(configs, schedules, curves)))


def layer_norms(cfg: AnyConfig, metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The weight norms under the names every architecture has (float64, one value per logged step):

    - ``norm_embed``: the input embeddings (MLP: U and V; transformer: W_E and W_pos),
    - ``norm_hidden``: the layers between them and the output (MLP: none, so 0; transformer: the
      attention's W_Q, W_K, W_V, W_O and the MLP's W_in, b_in, W_out, b_out),
    - ``norm_unembed``: the output layer (MLP: W; transformer: W_U),

    so the squares of the three sum to the squared norm of every parameter.
    """
    m = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
    if architecture_of(cfg) == "transformer":
        return {"norm_embed": np.hypot(m["norm_embed"], m["norm_pos"]),
                "norm_hidden": np.hypot(m["norm_attn"], m["norm_mlp"]),
                "norm_unembed": m["norm_unembed"]}
    return {"norm_embed": np.hypot(m["norm_U"], m["norm_V"]), "norm_hidden": np.zeros_like(m["norm_U"]),
            "norm_unembed": m["norm_W"]}


def observed(run: TrainedRun, with_test: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The public fields and arrays a method gets: configuration and everything logged up to t_obs
    (test curves only ``with_test``), and the last checkpoints of the inputs of a and b up to t_obs.

    The fields are the same for both architectures: ``width`` is the width of the embeddings (the
    MLP's hidden width, the transformer's d_model), ``act`` the hidden activation (the transformer's
    MLP is ReLU), ``n_heads`` and ``d_mlp`` are 0 for the MLP."""
    c, cu, o = run.config, run.curves, run.onset
    seen = cu.steps <= o.t_obs
    curves = {**{k: cu.metrics[k] for k in ("train_loss", "train_acc", "grad_norm", *TEST_KEYS)},
              **layer_norms(c, cu.metrics)}
    keys = TRAIN_KEYS + (TEST_KEYS if with_test else ())
    arrays: dict[str, np.ndarray] = {"steps": cu.steps[seen].astype(np.int64)}
    arrays.update({k: curves[k][seen].astype(np.float32) for k in keys})
    ck = np.flatnonzero(cu.ckpt_steps <= o.t_obs)[-N_CKPT_SHIPPED:]
    arrays["ckpt_steps"] = cu.ckpt_steps[ck].astype(np.int64)
    arrays["ckpt_U"] = cu.ckpt_U[ck].astype(np.float16)
    arrays["ckpt_V"] = cu.ckpt_V[ck].astype(np.float16)
    transformer = isinstance(c, TransformerConfig)
    public = {"architecture": run.architecture, "op": c.op, "p": c.p,
              "width": c.d_model if transformer else c.width, "act": "relu" if transformer else c.act,
              "n_heads": c.n_heads if transformer else 0, "d_mlp": c.d_mlp if transformer else 0,
              "lr": c.lr, "wd": c.wd, "train_frac": c.train_frac, "init_scale": c.init_scale, "dtype": c.dtype,
              "budget": o.budget, "t_obs": o.t_obs, "n_train": int(round(c.train_frac * c.p * c.p)),
              "n_logged": int(seen.sum()), "n_ckpt": int(ck.size)}
    return public, arrays


def run_arrays(run: TrainedRun) -> dict[str, np.ndarray]:
    """The whole run, past t_obs: every logged step of every curve (float32; the per-layer norms under
    the generic names of :func:`layer_norms` and, prefixed ``raw_``, as the architecture logged them)
    and every checkpoint of the inputs of a and b (float16). Hidden from the method: it goes beside
    the answers."""
    cu = run.curves
    arrays: dict[str, np.ndarray] = {"steps": cu.steps.astype(np.int64)}
    arrays.update({("raw_" + k if k.startswith("norm_") else k): np.asarray(v).astype(np.float32)
                   for k, v in cu.metrics.items()})
    arrays.update({k: v.astype(np.float32) for k, v in layer_norms(run.config, cu.metrics).items()})
    arrays["ckpt_steps"] = cu.ckpt_steps.astype(np.int64)
    arrays["ckpt_U"] = cu.ckpt_U.astype(np.float16)
    arrays["ckpt_V"] = cu.ckpt_V.astype(np.float16)
    return arrays
