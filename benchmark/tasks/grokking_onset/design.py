"""What a grokking-onset split is drawn from: the ranges of the run hyperparameters, each architecture's
schedule and the sets a split can be built at (:data:`SCALES`).

Torch-free on purpose: the task's metadata and registration read these (the largest budget, the
scales, the held-out moduli), and the leaderboard, which lists the tasks, runs without torch.
Training them is :mod:`.generator`'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["OPERATIONS", "ACTIVATIONS", "Schedule", "TransformerDesign", "SplitDesign", "DESIGNS", "GPU_DESIGNS",
           "SCALES", "design_for"]

OPERATIONS = ("add", "sub", "mul", "sq")          # (a+b), (a-b), (a*b), a^2+b^2  mod p
ACTIVATIONS = ("relu", "quad")

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


def design_for(split: str, scale: str = "embedded") -> SplitDesign:
    """The design of a split at a scale (:data:`SCALES`); ValueError naming the choices otherwise."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(SCALES)}")
    if split not in SCALES[scale]:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SCALES[scale])}")
    return SCALES[scale][split]
