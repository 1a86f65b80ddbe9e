"""Paired bootstrap statistics over per-instance values: rank intervals for a leaderboard and paired
differences for the compare page.

Every resample draws instance ids (with replacement) from the instances under comparison, and
all evaluations are scored on *the same* draw, so instance difficulty cancels out. Draws are
seeded, so the same inputs always give the same intervals.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["N_BOOT", "SEED", "LEVEL", "RankInterval", "rank_intervals", "PairedDiff", "paired_difference",
           "format_rank_interval"]

N_BOOT = 2000
SEED = 20250101
LEVEL = 0.95


@dataclass(frozen=True)
class RankInterval:
    low: int
    high: int
    tied_with_previous: bool = False   # paired bootstrap cannot separate it from the row above

    def label(self) -> str:
        return format_rank_interval(self.low, self.high)


def format_rank_interval(low: int | None, high: int | None) -> str:
    if low is None or high is None:
        return "—"
    return str(low) if low == high else f"{low}–{high}"


def _draws(n_instances: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_instances) indices into the instance axis."""
    return np.random.default_rng(seed).integers(0, n_instances, size=(n_boot, n_instances))


def _boot_stat(values: np.ndarray, mask: np.ndarray, draws: np.ndarray, aggregation: str) -> np.ndarray:
    """(rows, n_boot) statistic of each row on each resample, over the drawn instances the row has;
    NaN where a resample drew none of them."""
    rows, n = values.shape
    if aggregation == "median":
        out = np.empty((rows, draws.shape[0]))
        masked = np.where(mask, values, np.nan)
        for start in range(0, draws.shape[0], 64):
            chunk = masked[:, draws[start:start + 64]]          # rows × chunk × n
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN slices give NaN
                out[:, start:start + 64] = np.nanmedian(chunk, axis=2)
        return out
    counts = np.zeros((draws.shape[0], n))
    np.add.at(counts, (np.repeat(np.arange(draws.shape[0]), n), draws.ravel()), 1.0)
    filled = np.where(mask, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (filled @ counts.T) / (mask.astype(float) @ counts.T)


def rank_intervals(per_instance: Sequence[dict[str, float | None]], higher_is_better: bool,
                   aggregation: str = "mean", n_boot: int = N_BOOT, seed: int = SEED,
                   level: float = LEVEL) -> list[RankInterval]:
    """Rank intervals for rows given as ``{instance_id: headline value or None}`` each.

    On every resample all rows are scored on the same drawn instances (a row missing an instance,
    or whose value there is None, is scored over the drawn instances it has) and ranked jointly
    (1 = best, equal scores share the better rank, a row with nothing drawn ranks last). The
    interval is the central ``level`` range of each row's rank. ``tied_with_previous`` says the
    paired difference to the row before it (over the instances the two share) has a ``level``
    bootstrap interval containing 0.
    """
    rows = len(per_instance)
    if rows == 0:
        return []
    ids = sorted({i for d in per_instance for i in d})
    if not ids:
        return [RankInterval(1, rows) for _ in range(rows)]
    col = {iid: k for k, iid in enumerate(ids)}
    values = np.full((rows, len(ids)), np.nan)
    for r, d in enumerate(per_instance):
        for iid, v in d.items():
            if v is not None and math.isfinite(v):
                values[r, col[iid]] = v
    mask = ~np.isnan(values)
    draws = _draws(len(ids), n_boot, seed)
    stat = _boot_stat(values, mask, draws, aggregation)
    score = stat if higher_is_better else -stat
    score = np.where(np.isnan(score), -np.inf, score)
    # rank = 1 + number of rows strictly better on that resample
    ordered = np.sort(score, axis=0)
    ranks = np.empty_like(score)
    for b in range(score.shape[1]):
        ranks[:, b] = 1 + rows - np.searchsorted(ordered[:, b], score[:, b], side="right")
    alpha = (1 - level) / 2
    lows = np.floor(np.quantile(ranks, alpha, axis=1)).astype(int)
    highs = np.ceil(np.quantile(ranks, 1 - alpha, axis=1)).astype(int)

    tied = [False] * rows
    if rows > 1:
        a, b = values[1:], values[:-1]
        shared = mask[1:] & mask[:-1]
        diff = np.where(shared, a - b, 0.0)
        dstat = _boot_stat(diff, shared, draws, aggregation)
        for r in range(1, rows):
            d = dstat[r - 1]
            d = d[~np.isnan(d)]
            if d.size == 0:
                tied[r] = True
                continue
            lo, hi = np.quantile(d, [alpha, 1 - alpha])
            tied[r] = bool(lo <= 0.0 <= hi)
    return [RankInterval(int(lo), int(hi), t) for lo, hi, t in zip(lows, highs, tied)]


@dataclass(frozen=True)
class PairedDiff:
    n: int
    mean_a: float | None
    mean_b: float | None
    diff: float | None          # mean over shared instances of (a − b)
    ci_low: float | None
    ci_high: float | None

    @property
    def significant(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None and not (self.ci_low <= 0.0 <= self.ci_high)

    def to_json(self) -> dict:
        return {"n": self.n, "mean_a": self.mean_a, "mean_b": self.mean_b, "diff": self.diff,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "significant": self.significant}


def paired_difference(pairs: Iterable[tuple[float, float]], n_boot: int = N_BOOT, seed: int = SEED,
                      level: float = LEVEL, with_ci: bool = True) -> PairedDiff:
    """Mean of (a − b) over paired values with a percentile paired-bootstrap interval."""
    arr = np.array([(a, b) for a, b in pairs if a is not None and b is not None
                    and math.isfinite(a) and math.isfinite(b)], dtype=float).reshape(-1, 2)
    n = len(arr)
    if n == 0:
        return PairedDiff(0, None, None, None, None, None)
    d = arr[:, 0] - arr[:, 1]
    lo = hi = None
    if with_ci:
        means = d[_draws(n, n_boot, seed)].mean(axis=1)
        alpha = (1 - level) / 2
        lo, hi = (float(x) for x in np.quantile(means, [alpha, 1 - alpha]))
    return PairedDiff(n, float(arr[:, 0].mean()), float(arr[:, 1].mean()), float(d.mean()), lo, hi)
