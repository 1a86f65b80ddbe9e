"""Aggregation with honest uncertainty: bootstrap confidence intervals over instances."""
from __future__ import annotations

from typing import Any, Sequence

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
    out: dict[str, Any] = {"n_instances": len(rows), "metrics": {}, "groups": {}}
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
    for group in sorted({r["group"] for r in rows}):
        grows = [r for r in rows if r["group"] == group]
        out["groups"][group] = {"n": len(grows)}
        for m in meta.metrics:
            vals = _applicable(grows, m.name)
            if m.aggregation == "auroc":
                out["groups"][group][m.name] = auroc(*_labelled(grows, m.name, m.label))
            else:
                out["groups"][group][m.name] = float(_AGG[m.aggregation](vals)) if vals else None
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
