"""Aggregation with honest uncertainty: bootstrap confidence intervals over instances."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import binomtest, rankdata

from .metadata import TaskMetadata

__all__ = ["bootstrap_ci", "aggregate", "below_nominal", "auroc", "auroc_ci"]

_AGG = {"mean": np.mean, "median": np.median}


def bootstrap_ci(values: Sequence[float], aggregation: str = "mean", n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Point estimate and percentile-bootstrap interval of the aggregate over instances."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    agg = _AGG[aggregation]
    point = float(agg(x))
    if x.size == 1:
        return point, point, point
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    stats = agg(x[idx], axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def aggregate(meta: TaskMetadata, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Summarise per-instance rows ({"group", "metrics"}, optionally "details") into overall and
    per-group figures. A metric aggregated as "auroc" is the AUROC of its per-instance values against
    the 0/1 class in each row's details under the metric's ``label``.

    Failed instances are in ``rows`` with their worst-case metrics, so a method cannot raise its
    score by crashing on the hard instances. Metrics that do not apply to an instance are None
    there and are aggregated over the instances they apply to (``n`` says how many).
    """
    all_rows = rows
    rows = [r for r in all_rows if meta.ranked(r.get("group"))]
    out: dict[str, Any] = {"n_instances": len(rows), "metrics": {}, "groups": {}}
    if len(rows) != len(all_rows):
        out["n_unranked"] = len(all_rows) - len(rows)
    for m in meta.metrics:
        vals = _applicable(rows, m.name)
        if m.aggregation == "auroc":
            out["metrics"][m.name] = _auroc_summary(*_labelled(rows, m.name, m.label))
        elif vals:
            point, lo, hi = bootstrap_ci(vals, m.aggregation)
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
    return out


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
