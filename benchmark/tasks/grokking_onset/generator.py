"""The runs of grokking-onset: hyperparameters drawn per split, trained in batches, cut at t_obs.

A split is a list of run configurations drawn from the split's seed (:func:`run_configs`): MLP runs
(:class:`~.trainer.RunConfig`) and a smaller subset of one-layer transformers in the configuration
of Nanda et al. 2023 (:class:`~.transformer.TransformerConfig`), each architecture with its own
budget (:class:`Schedule`). The runs are trained in batches of one shape (:func:`train_runs`) and
each becomes an instance unless it groks inside its observed prefix. Both tracks (train-side
signals only, and with the test curves) are cut from the same trained runs, memoised in-process so
building both trains once. What a method sees is uniform across architectures (:func:`observed`):
an ``architecture`` field, per-layer weight norms under generic names (:func:`layer_norms`) and
checkpoints of the inputs of a and b.

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
from .trainer import ACTIVATIONS, OPERATIONS, Curves, RunConfig, log_grid, train_batch
from .transformer import TransformerConfig, train_transformer_batch

__all__ = ["SplitDesign", "TransformerDesign", "Schedule", "DESIGNS", "ARCHITECTURES", "AnyConfig", "TrainedRun",
           "architecture_of", "config_params", "config_from_params", "schedule_of", "run_configs", "train_runs",
           "train_chunk", "trained_split", "observed", "layer_norms", "TRAIN_KEYS", "NORM_KEYS", "TEST_KEYS",
           "N_CKPT_SHIPPED", "CPU_BATCH", "GPU_BATCH", "GPU_MAX_ELEMENTS", "GPU_DESIGNS", "SCALES", "batches",
           "design_for", "activation_elements", "run_arrays"]

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


def _check_ranges(design: Any, ranges: Sequence[str], shares: Sequence[str]) -> None:
    """ValueError naming the field for a range that is not 0 < low <= high or a share outside [0, 1]."""
    for name in ranges:
        lo, hi = getattr(design, name)
        if not 0 < lo <= hi:
            raise ValueError(f"{type(design).__name__}.{name}: expected 0 < low <= high, got ({lo}, {hi})")
    for name in shares:
        if not 0 <= getattr(design, name) <= 1:
            raise ValueError(f"{type(design).__name__}.{name}: expected a share in [0, 1], got {getattr(design, name)}")


@dataclass(frozen=True)
class Schedule:
    """How long an architecture's runs train and what is kept: T steps, about ``n_log`` log-spaced
    logged steps (:func:`~.trainer.log_grid`), ``n_ckpt`` log-spaced embedding checkpoints."""
    budget: int
    n_log: int
    n_ckpt: int


@dataclass(frozen=True)
class TransformerDesign:
    """How a split's one-layer transformer runs are drawn (Nanda et al. 2023 widths; log-uniform
    ranges as (low, high)); the operations are the split's."""
    n_runs: int
    schedule: Schedule
    moduli: tuple[int, ...]
    lr: tuple[float, float]
    wd: tuple[float, float]
    wd_zero_share: float
    train_frac: tuple[float, float]
    init_scale: tuple[float, float]
    float64_share: float
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512

    def __post_init__(self) -> None:
        _check_ranges(self, ("lr", "wd", "train_frac", "init_scale"), ("wd_zero_share", "float64_share"))


@dataclass(frozen=True)
class SplitDesign:
    """How a split's MLP runs are drawn (log-uniform ranges as (low, high)), and its transformer subset."""
    n_runs: int
    budget: int
    n_log: int
    n_ckpt: int
    moduli: tuple[int, ...]
    held_out_moduli: tuple[int, ...]   # runs at these moduli (either architecture) form the group "held-out-p"
    widths: tuple[int, ...]            # drawn uniformly from the tuple: a repeated entry weighs more
    acts: tuple[str, ...]              # likewise
    ops: tuple[str, ...]
    lr: tuple[float, float]
    wd: tuple[float, float]
    wd_zero_share: float
    train_frac: tuple[float, float]
    init_scale: tuple[float, float]
    float64_share: float
    transformers: TransformerDesign | None = None

    def __post_init__(self) -> None:
        _check_ranges(self, ("lr", "wd", "train_frac", "init_scale"), ("wd_zero_share", "float64_share"))
        if not set(self.acts) <= set(ACTIVATIONS) or not set(self.ops) <= set(OPERATIONS):
            raise ValueError(f"SplitDesign: activations {self.acts} must be among {ACTIVATIONS} and operations "
                             f"{self.ops} among {OPERATIONS}")

    @property
    def schedule(self) -> Schedule:
        """The MLP runs' schedule."""
        return Schedule(self.budget, self.n_log, self.n_ckpt)

    @property
    def max_budget(self) -> int:
        return max(self.budget, self.transformers.schedule.budget if self.transformers else 0)


# The embedded (CPU-sized) set: T = 25000 steps. The grok step follows a weight-decay clock, roughly
# t_grok ~ (lr wd)^-0.8 to -0.9 (fitted on a first build at these sizes: log10 t_grok = 1.6 - 0.77 log10 lr
# - 0.94 log10 wd + 0.5 log10 alpha - 0.87 train_frac, +0.5 for ReLU, 0.14 dex of scatter), so learning
# rate and weight decay are spread over two and one decades (lr wd from 1e-4 to 9e-2) to spread the grok
# steps from about 100 (at 3 t_mem, the fastest runs grok inside their prefix) to 20000. Below weight
# decay 0.3 most x^2 runs plateau short of 0.9 test accuracy for good, so the range starts there.
# x^2 groks far more reliably than ReLU at these widths (about half the ReLU runs plateau below 0.9),
# so two thirds of the runs use it: with the runs without weight decay and those too slow for T,
# about a third never grok. The GPU-sized set (GPU_DESIGNS) has the full ranges.
_CPU: dict[str, Any] = dict(budget=25000, n_log=200, n_ckpt=16, widths=(64, 64, 128), acts=("quad", "quad", "relu"),
            ops=("add", "sub", "mul", "sq"), lr=(3e-4, 3e-2), wd=(0.3, 3.0), wd_zero_share=0.1,
            train_frac=(0.5, 0.85), init_scale=(0.5, 2.0), float64_share=0.1)
# The transformer subset: a sixth of the runs, each 10-15 times an MLP run's CPU time per step, so a
# small modulus (17) and a budget of its own (5000 steps: at these learning rates and weight decays
# Nanda et al.'s configuration groks in a few hundred to a few thousand steps, or not within T). Train
# fractions below 0.5 of the 289 pairs leave it memorising for good. All float32: a float64
# transformer would double the dominant cost of the build.
_CPU_TRANSFORMER: dict[str, Any] = dict(schedule=Schedule(budget=5000, n_log=160, n_ckpt=12), lr=(1.5e-3, 1e-2), wd=(0.3, 3.0),
                        wd_zero_share=0.1, train_frac=(0.5, 0.85), init_scale=(0.5, 2.0), float64_share=0.0)
DESIGNS = {
    "dev": SplitDesign(n_runs=48, moduli=(23, 29), held_out_moduli=(), **_CPU,
                       transformers=TransformerDesign(n_runs=8, moduli=(17,), **_CPU_TRANSFORMER)),
    "test": SplitDesign(n_runs=160, moduli=(23, 29, 31), held_out_moduli=(31, 19), **_CPU,
                        transformers=TransformerDesign(n_runs=27, moduli=(17, 19), **_CPU_TRANSFORMER)),
}
# The GPU-sized set: the full ranges (lr 3e-4..5e-3, wd 0.01..3 with 10% at 0, train fraction
# 0.2..0.8, init scale 0.5..8, widths 64..512, 10% float64) at p = 97 (Nanda et al.'s 113 held out in
# the test split), MLP budget 1e5 and transformer budget 3e4: at lr wd from 3e-6 to 1.5e-2 the
# weight-decay clock puts the grok steps from ~1e3 past 1e5, about three decades with a share that
# never groks. Not built yet (no GPU was lent): `phasebench data build --scale gpu --device cuda`
# builds it. Model-steps: dev 2.6e7 MLP + 9.6e5 transformer, test 1.0e8 + 3.8e6; at the issue's
# 1e4 model-steps/s that is under an hour for dev and about three hours for test on one H100/H200,
# plus the transformers at their (unmeasured) GPU rate.
_GPU: dict[str, Any] = dict(budget=100_000, n_log=300, n_ckpt=24, widths=(64, 128, 256, 512), acts=("quad", "relu"),
            ops=("add", "sub", "mul", "sq"), lr=(3e-4, 5e-3), wd=(0.01, 3.0), wd_zero_share=0.1,
            train_frac=(0.2, 0.8), init_scale=(0.5, 8.0), float64_share=0.1)
_GPU_TRANSFORMER: dict[str, Any] = dict(schedule=Schedule(budget=30_000, n_log=250, n_ckpt=20), lr=(3e-4, 5e-3), wd=(0.01, 3.0),
                        wd_zero_share=0.1, train_frac=(0.2, 0.8), init_scale=(0.5, 8.0), float64_share=0.1)
GPU_DESIGNS = {
    "dev": SplitDesign(n_runs=256, moduli=(97,), held_out_moduli=(), **_GPU,
                       transformers=TransformerDesign(n_runs=32, moduli=(97,), **_GPU_TRANSFORMER)),
    "test": SplitDesign(n_runs=1024, moduli=(97, 113), held_out_moduli=(113,), **_GPU,
                        transformers=TransformerDesign(n_runs=128, moduli=(97, 113), **_GPU_TRANSFORMER)),
}
#: the sets a split can be built at: "embedded" is the committed, pinned one every test and the demo use
SCALES = {"embedded": DESIGNS, "gpu": GPU_DESIGNS}


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


def design_for(split: str, scale: str = "embedded") -> SplitDesign:
    """The design of a split at a scale (:data:`SCALES`); ValueError naming the choices otherwise."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(SCALES)}")
    if split not in SCALES[scale]:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SCALES[scale])}")
    return SCALES[scale][split]


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
