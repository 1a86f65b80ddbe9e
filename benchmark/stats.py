"""Aggregation with honest uncertainty: bootstrap confidence intervals over instances."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.stats import binomtest

from .metadata import TaskMetadata

__all__ = ["bootstrap_ci", "aggregate", "below_nominal"]

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
    """Summarise per-instance rows ({"group", "metrics"}) into overall and per-group figures.

    Failed instances are in ``rows`` with their worst-case metrics, so a method cannot raise its
    score by crashing on the hard instances. Metrics that do not apply to an instance are None
    there and are aggregated over the instances they apply to (``n`` says how many).
    """
    out: dict[str, Any] = {"n_instances": len(rows), "metrics": {}, "groups": {}}
    for m in meta.metrics:
        vals = _applicable(rows, m.name)
        if vals:
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
            out["groups"][group][m.name] = float(_AGG[m.aggregation](vals)) if vals else None
    return out


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
