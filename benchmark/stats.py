"""PhaseBench's one statistics module: aggregation of per-instance scores with honest uncertainty,
rank intervals and paired comparisons for the leaderboard, and skill against the no-skill floors.

Every interval is a percentile bootstrap over instances. Where instances belong to groups (a task's
families or tiers), resamples draw *within* each group (stratified), so every resample keeps the
split's composition and a difference between groups never masquerades as uncertainty. Paired
statistics score all evaluations on the same resampled instances, so instance difficulty cancels
out. Draws are seeded: the same inputs always give the same intervals.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest, rankdata

from .metadata import Metric, TaskMetadata

__all__ = [
    "LEVEL",
    "MIN_HIDDEN_SLICE",
    "N_BOOT",
    "SEED",
    "SKILL_CLIP",
    "PairedDiff",
    "PublishedSlices",
    "RankInterval",
    "Skill",
    "aggregate",
    "auroc",
    "auroc_ci",
    "below_nominal",
    "bootstrap_ci",
    "detectable_difference",
    "format_rank_interval",
    "hidden_split_slices",
    "paired_difference",
    "rank_intervals",
    "resample_indices",
    "skill_against_floor",
    "withheld_slices",
]

N_BOOT = 2000
SEED = 20250101
LEVEL = 0.95
# A task's contribution to the overall ranking is its skill clipped to this range, so one task on
# which a method is far below the floor cannot outweigh every other task.
SKILL_CLIP = (-1.0, 1.0)

_AGG = {"mean": np.mean, "median": np.median}


def resample_indices(n: int, n_boot: int = N_BOOT, seed: int = SEED,
                     strata: Sequence[Hashable] | None = None) -> np.ndarray:
    """(n_boot, n) bootstrap draws of indices into n instances; with ``strata`` (one label per
    instance) each resample draws within every stratum as many instances as it holds."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.integers(0, n, size=(n_boot, n))
    labels = list(strata)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} strata labels for {n} instances")
    draws = np.empty((n_boot, n), dtype=np.int64)
    by_stratum: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        by_stratum.setdefault(label, []).append(i)
    # sorted by first member, so the draws do not depend on the labels' hash order
    for members in sorted(by_stratum.values(), key=lambda m: m[0]):
        idx = np.asarray(members)
        draws[:, idx] = idx[rng.integers(0, idx.size, size=(n_boot, idx.size))]
    return draws


def bootstrap_ci(values: Sequence[float], aggregation: str = "mean", n_boot: int = N_BOOT,
                 level: float = LEVEL, seed: int = 0,
                 strata: Sequence[Hashable] | None = None) -> tuple[float, float, float]:
    """Point estimate and percentile-bootstrap interval of the aggregate over instances
    (stratified by ``strata`` when given)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    agg = _AGG[aggregation]
    point = float(agg(x))
    if x.size == 1:
        return point, point, point
    stats = agg(x[resample_indices(x.size, n_boot, seed, strata)], axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def aggregate(meta: TaskMetadata, rows: Sequence[dict[str, Any]], *, hidden: bool = False) -> dict[str, Any]:
    """Summarise per-instance rows ({"group", "metrics"}, optionally "details") into overall and
    per-group figures. A metric aggregated as "auroc" is the AUROC of its per-instance values against
    the 0/1 class in each row's details under the metric's ``label``.

    Failed instances are in ``rows`` with their worst-case metrics, so a method cannot raise its
    score by crashing on the hard instances. Metrics that do not apply to an instance are None
    there and are aggregated over the instances they apply to (``n`` says how many).

    ``hidden``: the rows are of a split whose answers are hidden; the summary is published, so it
    keeps only the group and breakdown slices :func:`hidden_split_slices` allows.
    """
    all_rows = rows
    rows = [r for r in all_rows if meta.ranked(r.get("group"))]
    out: dict[str, Any] = {"n_instances": len(all_rows), "metrics": {}, "groups": {}}
    if len(rows) != len(all_rows):
        out["n_unranked"] = len(all_rows) - len(rows)
    for m in meta.metrics:
        applicable = [r for r in rows if r["metrics"].get(m.name) is not None]
        vals = [r["metrics"][m.name] for r in applicable]
        if m.aggregation == "auroc":
            out["metrics"][m.name] = _auroc_summary(*_labelled(rows, m.name, m.label))
        elif vals:
            point, lo, hi = bootstrap_ci(vals, m.aggregation, strata=[r.get("group") for r in applicable])
            out["metrics"][m.name] = {"value": point, "ci_low": lo, "ci_high": hi, "n": len(vals)}
            if m.nominal_rate is not None:
                out["metrics"][m.name].update(below_nominal(vals, m.nominal_rate))
        else:
            out["metrics"][m.name] = {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    out["groups"] = _slices(meta, all_rows, lambda r: r["group"])
    if meta.breakdowns:
        # An optional key of the stored summary (absent in summaries written before breakdowns
        # existed, and for tasks without any): readers must treat a missing key as "none".
        out["breakdowns"] = {b.name: _slices(meta, rows, _detail_value(b.key)) for b in meta.breakdowns}
    if hidden:
        kept = hidden_split_slices(meta, all_rows)
        out["groups"] = {g: v for g, v in out["groups"].items() if g in kept.groups}
        if meta.breakdowns:
            out["breakdowns"] = {b: {s: v for s, v in slices.items() if s in kept.breakdowns[b]}
                                 for b, slices in out["breakdowns"].items()}
    return out


#: On a split whose answers are hidden, the fewest instances any published aggregate may rest on.
#: Per-instance scores give the answers away (a constant answer's log10 error on rare-behavior solves
#: for p), and an aggregate over one or two instances is such a score.
MIN_HIDDEN_SLICE = 5


@dataclass(frozen=True)
class PublishedSlices:
    """The group and breakdown slices a hidden split's summary may publish."""
    groups: frozenset[str]
    breakdowns: dict[str, frozenset[str]]


def withheld_slices(counts: Mapping[str, int], unsliced: int = 0, minimum: int = MIN_HIDDEN_SLICE) -> set[str]:
    """The slices of one partition of a set to withhold so that nothing published, nor anything that
    follows from it and the set's own aggregate, rests on fewer than ``minimum`` instances: every
    slice under ``minimum``, then the next smallest until what is withheld, with the ``unsliced``
    instances no slice holds, holds ``minimum`` (for a mean, the total and the published slices
    give the rest's aggregate away)."""
    withheld = {s for s, n in counts.items() if n < minimum}
    published = sorted((n, s) for s, n in counts.items() if s not in withheld)
    while (withheld or unsliced) and sum(counts[s] for s in withheld) + unsliced < minimum and published:
        withheld.add(published.pop(0)[1])
    return withheld


def hidden_split_slices(meta: TaskMetadata, rows: Sequence[dict[str, Any]],
                        minimum: int = MIN_HIDDEN_SLICE) -> PublishedSlices:
    """Which group and breakdown slices of a hidden split may be published: each partition loses
    its small slices (:func:`withheld_slices`), and a breakdown is withheld whole where, crossed
    with the groups and the breakdowns kept before it, it would leave a cell of fewer than
    ``minimum`` instances. A published aggregate is a sum over its slice's instances, so what can be
    solved for is a sum over a union of such cells; no cell under ``minimum`` means no set under
    ``minimum`` (a linear aggregate; a median or an AUROC gives away no more)."""
    ranked = [r for r in rows if meta.ranked(r.get("group"))]
    unranked = [r for r in rows if not meta.ranked(r.get("group"))]

    def counts(rs: Sequence[dict[str, Any]], slice_of: Callable[[dict[str, Any]], str | None]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in rs:
            name = slice_of(r)
            if name is not None:
                out[name] = out.get(name, 0) + 1
        return out

    def group_of(r: dict[str, Any]) -> str | None:
        return r.get("group")

    withheld_groups = withheld_slices(counts(ranked, group_of), minimum=minimum)
    withheld_groups |= withheld_slices(counts(unranked, group_of), minimum=minimum)
    published_groups = frozenset(g for g in counts(rows, group_of) if g not in withheld_groups)
    # the cell of each ranked row: the published slices it is in, the withheld ones merged (their
    # union is known: the total less the published)
    cell: list[tuple[str | None, ...]] = [(g if (g := r.get("group")) in published_groups else None,)
                                          for r in ranked]
    breakdowns: dict[str, frozenset[str]] = {}
    for b in meta.breakdowns:
        slice_of = _detail_value(b.key)
        slice_counts = counts(ranked, slice_of)
        withheld = withheld_slices(slice_counts, unsliced=len(ranked) - sum(slice_counts.values()), minimum=minimum)
        published = frozenset(s for s in slice_counts if s not in withheld)
        crossed = [c + (s if (s := slice_of(r)) in published else None,) for c, r in zip(cell, ranked)]
        sizes: dict[tuple[str | None, ...], int] = {}
        for c in crossed:
            sizes[c] = sizes.get(c, 0) + 1
        if published and min(sizes.values()) >= minimum:
            breakdowns[b.name], cell = published, crossed
        else:
            breakdowns[b.name] = frozenset()
    return PublishedSlices(published_groups, breakdowns)


def _detail_value(key: str) -> Callable[[dict[str, Any]], str | None]:
    def value(row: dict[str, Any]) -> str | None:
        v = (row.get("details") or {}).get(key)
        if v is None:
            return None
        # JSON object keys are text; an integral float (a decade stored as -7.0) reads as "-7"
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return value


def _slice_order(name: str) -> tuple:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _slices(meta: TaskMetadata, rows: Sequence[dict[str, Any]],
            slice_of: Callable[[dict[str, Any]], str | None]) -> dict[str, dict[str, Any]]:
    """``{slice: {"n": int, metric: aggregate}}``; numeric slice names in numeric order. Rows whose
    slice is None (a detail the instance lacks) are left out of every slice, never guessed."""
    by_slice: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        name = slice_of(r)
        if name is not None:
            by_slice.setdefault(name, []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(by_slice, key=_slice_order):
        srows = by_slice[name]
        entry: dict[str, Any] = {"n": len(srows)}
        for m in meta.metrics:
            if m.aggregation == "auroc":
                entry[m.name] = auroc(*_labelled(srows, m.name, m.label))
            else:
                vals = _applicable(srows, m.name)
                entry[m.name] = float(_AGG[m.aggregation](vals)) if vals else None
        out[name] = entry
    return out


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve of ``scores`` for the 0/1 ``labels`` (ties count one half): the
    Mann-Whitney statistic. None when one class is absent (it is undefined there)."""
    y = np.asarray(labels, dtype=bool)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auroc_ci(labels: Sequence[int], scores: Sequence[float], n_boot: int = 2000, level: float = 0.95,
             seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """AUROC and its percentile-bootstrap interval over instances (resamples with one class only
    are dropped: the AUROC is not defined on them)."""
    point = auroc(labels, scores)
    if point is None:
        return None, None, None
    y = np.asarray(labels, dtype=bool)
    x = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(n_boot, y.size))
    yb, ranks = y[idx], rankdata(x[idx], axis=1)
    n1 = yb.sum(1)
    n0 = y.size - n1
    keep = (n1 > 0) & (n0 > 0)
    stats = ((ranks * yb).sum(1)[keep] - n1[keep] * (n1[keep] + 1) / 2) / (n1[keep] * n0[keep])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def _labelled(rows: Sequence[dict[str, Any]], name: str, label: str | None) -> tuple[list[int], list[float]]:
    """(classes, scores) of the instances that have both: the class from the row's details."""
    pairs = [(int((r.get("details") or {})[label]), r["metrics"][name]) for r in rows
             if r["metrics"].get(name) is not None and (r.get("details") or {}).get(label) is not None]
    return [c for c, _ in pairs], [v for _, v in pairs]


def _auroc_summary(labels: list[int], scores: list[float]) -> dict[str, Any]:
    point, lo, hi = auroc_ci(labels, scores)
    return {"value": point, "ci_low": lo, "ci_high": hi, "n": len(labels)}


def below_nominal(values: Sequence[float], nominal: float, alpha: float = 0.05) -> dict[str, Any]:
    """One-sided exact binomial test of 0/1 values against a nominal rate (e.g. a 95% bound's
    coverage): its p-value and whether the rate is significantly below nominal at level alpha."""
    hits = int(round(sum(values)))
    p_value = float(binomtest(hits, len(values), nominal, alternative="less").pvalue)
    return {"nominal": nominal, "binom_p": p_value, "below_nominal": p_value < alpha}


def _applicable(rows: Sequence[dict[str, Any]], name: str) -> list[float]:
    """The metric's values over the instances it applies to. A task reports None for a metric
    that does not apply to an instance (None, not NaN: PostgreSQL's JSON rejects NaN)."""
    return [r["metrics"][name] for r in rows if r["metrics"].get(name) is not None]


# --- the leaderboard: rank intervals, paired differences, skill ----------------------------------
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


def _draw_counts(draws: np.ndarray, n: int) -> np.ndarray:
    """(n_boot, n): how often each resample drew each instance."""
    n_boot = draws.shape[0]
    flat = (np.arange(n_boot)[:, None] * n + draws).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _nan_median_last(chunk: np.ndarray) -> np.ndarray:
    """np.nanmedian over the last axis (NaN where a slice has no value), by one sort: nanmedian
    itself falls back to a Python loop over slices for arrays of this shape."""
    valid = (~np.isnan(chunk)).sum(axis=-1)
    ordered = np.sort(np.where(np.isnan(chunk), np.inf, chunk), axis=-1)
    lower = np.take_along_axis(ordered, np.maximum(valid - 1, 0)[..., None] // 2, axis=-1)[..., 0]
    upper = np.take_along_axis(ordered, (valid // 2)[..., None], axis=-1)[..., 0]
    return np.where(valid > 0, (lower + upper) / 2, np.nan)


def _boot_stat(values: np.ndarray, mask: np.ndarray, draws: np.ndarray, aggregation: str,
               counts: np.ndarray | None = None) -> np.ndarray:
    """(rows, n_boot) statistic of each row on each resample, over the drawn instances the row has;
    NaN where a resample drew none of them. ``counts`` is _draw_counts(draws), when the caller
    has it already."""
    rows, n = values.shape
    if aggregation == "median":
        out = np.empty((rows, draws.shape[0]))
        masked = np.where(mask, values, np.nan)
        for start in range(0, draws.shape[0], 64):
            out[:, start:start + 64] = _nan_median_last(masked[:, draws[start:start + 64]])   # rows × chunk × n
        return out
    counts = _draw_counts(draws, n) if counts is None else counts
    filled = np.where(mask, values, 0.0)
    # The denominators are sums of whole counts, exact in any order: computed once per distinct
    # mask (rows usually share one), they are the same numbers as mask @ counts.T.
    pattern_of: dict[bytes, int] = {}
    which = np.array([pattern_of.setdefault(row.tobytes(), r) for r, row in enumerate(np.packbits(mask, axis=1))],
                     dtype=np.intp)
    firsts, which = np.unique(which, return_inverse=True)
    drawn = (mask[firsts].astype(float) @ counts.T)[which]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (filled @ counts.T) / drawn


def _value_matrix(per_instance: Sequence[dict[str, float | None]],
                  groups: Mapping[str, Hashable] | None) -> tuple[np.ndarray, np.ndarray, list[Hashable] | None]:
    ids = sorted({i for d in per_instance for i in d})
    # None (and a missing instance) becomes NaN; an infinite value counts as missing too
    values = np.array([list(map(d.get, ids)) for d in per_instance], dtype=float).reshape(len(per_instance), len(ids))
    values[~np.isfinite(values)] = np.nan
    strata = None if groups is None else [groups.get(i) for i in ids]
    return values, ~np.isnan(values), strata


def _quantile_neighbours(n: int, q: float) -> tuple[int, int, float]:
    """Where np.quantile (method "linear") looks for ``q`` among n sorted values: the two
    positions it interpolates between and the weight of the second, as numpy computes them."""
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return n - 1, n - 1, 0.0
    if virtual < 0:
        return 0, 0, 0.0
    below = math.floor(virtual)
    return below, below + 1, virtual - below


def _lerp(low: np.ndarray, high: np.ndarray, t: float) -> np.ndarray:
    """numpy's own interpolation between neighbouring order statistics (numpy.quantile's _lerp),
    operation for operation, so the result is bit for bit np.quantile's."""
    step = high - low
    return high - step * (1 - t) if t >= 0.5 else low + step * t


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _ranks_by_resample(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a (n_boot, rows) ``key`` (lower is better): ``order``, each resample's rows best first
    (an argsort), and ``rank``, the rank of the row at each of those places: one more than the
    place of the first equal key (equal keys share the better rank, as rankdata's "min"). A large
    array goes in blocks of resamples on as many threads as there are CPUs (numpy sorts without
    the GIL; every resample is sorted the same whichever block it is in)."""
    n_boot, rows = key.shape
    order = np.empty(key.shape, dtype=np.intp)
    rank = np.empty(key.shape, dtype=np.intp)

    def sort(block: slice) -> None:
        order[block] = np.argsort(key[block], axis=1)
        ordered = np.take_along_axis(key[block], order[block], axis=1)
        ranks = rank[block]
        ranks[:] = np.arange(1, rows + 1)
        # ties are few: each place equal to the one before it takes the rank of its run's first
        tie = np.flatnonzero(ordered[:, 1:] == ordered[:, :-1])
        if tie.size:
            tie += tie // (rows - 1) + 1                 # its place in the block, row by row
            new_run = np.ones(tie.size, dtype=bool)
            new_run[1:] = tie[1:] != tie[:-1] + 1
            run_start = np.maximum.accumulate(np.where(new_run, tie - 1, 0))
            ranks.flat[tie] -= tie - run_start
    parts = min(_cpus(), 4, n_boot) if key.size >= 200_000 else 1
    bounds = np.linspace(0, n_boot, parts + 1).astype(int)
    blocks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    if len(blocks) == 1:
        sort(blocks[0])
        return order, rank
    with ThreadPoolExecutor(len(blocks) - 1) as pool:
        done = [pool.submit(sort, block) for block in blocks[1:]]
        sort(blocks[0])
        for future in done:
            future.result()
    return order, rank


def _rank_bounds(score: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """floor and ceil of np.quantile(rankdata(-score, "min", axis=0), [alpha, 1 - alpha], axis=1)
    for a (rows, n_boot) score without NaN: each row's rank interval, the same integers.

    Each resample is ranked by one sort of a contiguous (n_boot, rows) copy. The quantiles need
    only two order statistics of each row's n_boot integer ranks: read off the cumulative count
    of its ranks (rows × rows counts) when that is no larger than the ranks themselves, else by
    partition."""
    rows, n_boot = score.shape
    order, rank = _ranks_by_resample(np.ascontiguousarray(-score.T))   # ascending: the best row first
    needed = [_quantile_neighbours(n_boot, q) for q in (alpha, 1 - alpha)]
    kth = sorted({k for lo, hi, _ in needed for k in (lo, hi)})
    if rows < n_boot:
        hist = np.bincount((order * (rows + 1) + rank).ravel(), minlength=rows * (rows + 1))
        below = np.cumsum(hist.reshape(rows, rows + 1), axis=1)   # below[r, k]: draws ranked <= k
        stats = {k: (below <= k).sum(axis=1) for k in kth}      # the k-th smallest rank (0-based k)
    else:
        ranks = np.empty_like(rank)
        np.put_along_axis(ranks, order, rank, axis=1)
        part = np.partition(np.ascontiguousarray(ranks.T), kth, axis=1)
        stats = {k: part[:, k] for k in kth}
    (lo_a, lo_b, lo_t), (hi_a, hi_b, hi_t) = needed
    low = _lerp(stats[lo_a].astype(float), stats[lo_b].astype(float), lo_t)
    high = _lerp(stats[hi_a].astype(float), stats[hi_b].astype(float), hi_t)
    return np.floor(low).astype(int), np.ceil(high).astype(int)


def _interval_covers_zero(diffs: np.ndarray, alpha: float) -> np.ndarray:
    """For (pairs, n_boot) finite differences: does np.quantile(diffs, [alpha, 1 - alpha],
    axis=1) contain 0? Decided by counting where the order statistics numpy interpolates between
    are both on one side of 0 (the interpolation stays between them), by np.quantile itself on
    the rows where they straddle it."""
    n = diffs.shape[1]
    lo_a, lo_b, _ = _quantile_neighbours(n, alpha)
    hi_a, hi_b, _ = _quantile_neighbours(n, 1 - alpha)
    n_le = (diffs <= 0).sum(axis=1)        # the sorted row's first n_le values are <= 0
    n_lt = (diffs < 0).sum(axis=1)
    low_le = n_le > lo_b                   # both neighbours <= 0: low <= 0
    low_unsure = ~low_le & (n_le > lo_a)   # the first <= 0 < the second
    high_ge = n_lt <= hi_a                 # both neighbours >= 0: high >= 0
    high_unsure = ~high_ge & (n_lt <= hi_b)
    covers = low_le & high_ge
    unsure = np.flatnonzero((low_unsure | low_le) & (high_unsure | high_ge) & ~covers)
    if unsure.size:
        lo, hi = np.quantile(diffs[unsure], [alpha, 1 - alpha], axis=1)
        covers[unsure] = np.isnan(lo) | ((lo <= 0.0) & (0.0 <= hi))
    return covers


def rank_intervals(per_instance: Sequence[dict[str, float | None]], higher_is_better: bool,
                   aggregation: str = "mean", n_boot: int = N_BOOT, seed: int = SEED,
                   level: float = LEVEL, groups: Mapping[str, Hashable] | None = None) -> list[RankInterval]:
    """Rank intervals for rows given as ``{instance_id: headline value or None}`` each.

    On every resample (stratified by ``groups``, ``{instance_id: group}``, when given) all rows are
    scored on the same drawn instances (a row missing an instance, or whose value there is None, is
    scored over the drawn instances it has) and ranked jointly (1 = best, equal scores share the
    better rank, a row with nothing drawn ranks last). The interval is the central ``level`` range
    of each row's rank. ``tied_with_previous`` says the paired difference of the aggregates to the
    row before it (over the instances the two share) has a ``level`` interval containing 0.
    """
    rows = len(per_instance)
    if rows == 0:
        return []
    values, mask, strata = _value_matrix(per_instance, groups)
    if values.shape[1] == 0:
        return [RankInterval(1, rows) for _ in range(rows)]
    draws = resample_indices(values.shape[1], n_boot, seed, strata)
    counts = None if aggregation == "median" else _draw_counts(draws, values.shape[1])
    stat = _boot_stat(values, mask, draws, aggregation, counts)
    score = stat if higher_is_better else -stat
    score = np.where(np.isnan(score), -np.inf, score)
    # rank = 1 + number of rows strictly better on that resample (ties share the better rank)
    alpha = (1 - level) / 2
    lows, highs = _rank_bounds(score, alpha)

    # Each row against the one above it, over the instances both have: all pairs in one pass.
    tied = [False] * rows
    if rows > 1:
        shared = mask[1:] & mask[:-1]
        pairs = np.concatenate([np.where(shared, values[1:], np.nan), np.where(shared, values[:-1], np.nan)])
        stats = _boot_stat(pairs, np.concatenate([shared, shared]), draws, aggregation, counts)
        diffs = stats[:rows - 1] - stats[rows - 1:]
        finite = np.isfinite(diffs).all(axis=1)
        # A NaN is a resample that drew none of the pair's shared instances: those pairs take the
        # quantiles of the resamples that did, one by one (as does a pair with an infinite
        # difference); the rest in one pass.
        covers = np.ones(rows - 1, dtype=bool)      # no resample at all: cannot separate them
        if finite.any():
            covers[finite] = _interval_covers_zero(diffs[finite], alpha)
        for r in np.flatnonzero(~finite):
            d = diffs[r][~np.isnan(diffs[r])]
            if d.size:
                lo, hi = np.quantile(d, [alpha, 1 - alpha])
                covers[r] = bool(np.isnan(lo) or lo <= 0.0 <= hi)
        tied[1:] = covers.tolist()
    return [RankInterval(int(lo), int(hi), t) for lo, hi, t in zip(lows, highs, tied)]


@dataclass(frozen=True)
class PairedDiff:
    n: int
    value_a: float | None       # the aggregate of a over the shared instances
    value_b: float | None
    diff: float | None          # aggregate(a) − aggregate(b) over the shared instances
    ci_low: float | None
    ci_high: float | None
    aggregation: str = "mean"

    @property
    def significant(self) -> bool:
        return self.ci_low is not None and self.ci_high is not None and not (self.ci_low <= 0.0 <= self.ci_high)

    @property
    def half_width(self) -> float | None:
        return None if self.ci_low is None or self.ci_high is None else (self.ci_high - self.ci_low) / 2

    def to_json(self) -> dict:
        return {"n": self.n, "aggregation": self.aggregation, "value_a": self.value_a, "value_b": self.value_b,
                "diff": self.diff, "ci_low": self.ci_low, "ci_high": self.ci_high, "significant": self.significant}


def _boot_aggregates(values: np.ndarray, draws: np.ndarray | None, aggregation: str,
                     labels: np.ndarray | None) -> np.ndarray:
    """The aggregate of ``values`` on each resample (a 0-d array without ``draws``)."""
    if aggregation == "auroc":
        if labels is None:
            raise ValueError("aggregation 'auroc' needs the 0/1 labels of the instances")
        idx = np.arange(values.size)[None, :] if draws is None else draws
        out = np.array([auroc(labels[d].tolist(), values[d].tolist()) for d in idx], dtype=float)
        return out[0] if draws is None else out
    agg = _AGG[aggregation]
    return np.asarray(agg(values)) if draws is None else agg(values[draws], axis=1)


def paired_difference(pairs: Sequence[tuple[float | None, float | None]], aggregation: str = "mean",
                      n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL, with_ci: bool = True,
                      strata: Sequence[Hashable] | None = None,
                      labels: Sequence[int | None] | None = None) -> PairedDiff:
    """aggregate(a) − aggregate(b) over the instances where both are finite, by the metric's
    declared aggregation ("mean", "median", or "auroc" with each instance's 0/1 ``labels``), with a
    paired percentile-bootstrap interval (stratified by ``strata``, one label per pair, when given)."""
    pairs = list(pairs)
    keep = [k for k, (a, b) in enumerate(pairs) if a is not None and b is not None
            and math.isfinite(a) and math.isfinite(b)
            and (labels is None or labels[k] is not None)]
    n = len(keep)
    if n == 0:
        return PairedDiff(0, None, None, None, None, None, aggregation)
    arr = np.array([pairs[k] for k in keep], dtype=float)
    y = None if labels is None else np.array([int(labels[k]) for k in keep])   # type: ignore[arg-type]
    va = float(_boot_aggregates(arr[:, 0], None, aggregation, y))
    vb = float(_boot_aggregates(arr[:, 1], None, aggregation, y))
    if not (math.isfinite(va) and math.isfinite(vb)):
        return PairedDiff(n, None, None, None, None, None, aggregation)
    lo = hi = None
    if with_ci:
        draws = resample_indices(n, n_boot, seed, None if strata is None else [strata[k] for k in keep])
        diffs = (_boot_aggregates(arr[:, 0], draws, aggregation, y)
                 - _boot_aggregates(arr[:, 1], draws, aggregation, y))
        diffs = diffs[np.isfinite(diffs)]
        if diffs.size:
            alpha = (1 - level) / 2
            lo, hi = (float(x) for x in np.quantile(diffs, [alpha, 1 - alpha]))
    return PairedDiff(n, va, vb, va - vb, lo, hi, aggregation)


@dataclass(frozen=True)
class Skill:
    """A method's skill against a no-skill floor on one task: (m − f) / (best − f) of the headline
    aggregates m (method) and f (floor) over the instances both answered, where ``best`` is the
    value a perfect answer reaches. 1 is perfect, 0 is the floor's score, negative is below it. The
    interval is a paired (stratified) bootstrap of that ratio; ``gain`` is the raw paired difference
    m − f, oriented so that positive is better."""
    floor: str
    n: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    gain: PairedDiff

    @property
    def beats_floor(self) -> bool:
        return self.ci_low is not None and self.ci_low > 0

    def to_json(self) -> dict[str, Any]:
        return {"floor": self.floor, "n": self.n, "skill": self.value, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "beats_floor": self.beats_floor,
                "gain": self.gain.diff, "gain_ci_low": self.gain.ci_low, "gain_ci_high": self.gain.ci_high}


def skill_against_floor(method: dict[str, float | None], floor: dict[str, float | None], metric: Metric,
                        floor_name: str = "floor", groups: Mapping[str, Hashable] | None = None,
                        labels: dict[str, int | None] | None = None,
                        n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL) -> Skill:
    """The :class:`Skill` of ``method`` against ``floor`` (``{instance_id: headline value}`` each)."""
    ids = sorted(set(method) & set(floor))
    pairs = [(method[i], floor[i]) for i in ids]
    strata = None if groups is None else [groups.get(i) for i in ids]
    lab = None if labels is None else [labels.get(i) for i in ids]
    sign = 1.0 if metric.higher_is_better else -1.0
    raw = paired_difference(pairs, metric.aggregation, n_boot, seed, level, True, strata, lab)
    low = high = None
    if raw.ci_low is not None and raw.ci_high is not None:
        low, high = sorted((sign * raw.ci_low, sign * raw.ci_high))
    gain = PairedDiff(raw.n, raw.value_a, raw.value_b, None if raw.diff is None else sign * raw.diff,
                      low, high, raw.aggregation)
    if raw.value_a is None or raw.value_b is None or raw.value_b == metric.best:
        return Skill(floor_name, raw.n, None, None, None, gain)
    keep = [k for k, (a, b) in enumerate(pairs) if a is not None and b is not None and math.isfinite(a)
            and math.isfinite(b) and (lab is None or lab[k] is not None)]
    arr = np.array([pairs[k] for k in keep], dtype=float)
    y = None if lab is None else np.array([int(lab[k]) for k in keep])   # type: ignore[arg-type]

    def ratio(draws: np.ndarray | None) -> np.ndarray:
        m = _boot_aggregates(arr[:, 0], draws, metric.aggregation, y)
        f = _boot_aggregates(arr[:, 1], draws, metric.aggregation, y)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(f != metric.best, (m - f) / (metric.best - f), np.nan)
    value = float(ratio(None))
    boots = ratio(resample_indices(len(keep), n_boot, seed, None if strata is None else [strata[k] for k in keep]))
    boots = boots[np.isfinite(boots)]
    lo = hi = None
    if boots.size:
        alpha = (1 - level) / 2
        lo, hi = (float(x) for x in np.quantile(boots, [alpha, 1 - alpha]))
    return Skill(floor_name, raw.n, value, lo, hi, gain)


def detectable_difference(per_instance: Sequence[dict[str, float | None]], metric: Metric,
                          groups: Mapping[str, Hashable] | None = None, n_boot: int = N_BOOT, seed: int = SEED,
                          level: float = LEVEL) -> float | None:
    """The smallest difference of the headline aggregate that a split can tell apart at ``level``
    between two of the given methods: the median, over all pairs of rows, of the half-width of
    their paired bootstrap interval. A real difference smaller than this is usually reported as
    "not separable". None with fewer than two rows."""
    if metric.aggregation == "auroc" or len(per_instance) < 2:
        return None
    halves = []
    for i in range(len(per_instance)):
        for j in range(i + 1, len(per_instance)):
            ids = sorted(set(per_instance[i]) & set(per_instance[j]))
            strata = None if groups is None else [groups.get(k) for k in ids]
            d = paired_difference([(per_instance[i][k], per_instance[j][k]) for k in ids], metric.aggregation,
                                  n_boot, seed, level, True, strata)
            if d.half_width is not None:
                halves.append(d.half_width)
    return float(np.median(halves)) if halves else None
