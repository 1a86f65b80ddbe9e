"""Turn stored evaluations into ranked leaderboard rows, shared by the pages and the API so that
both always show the same order.

The order follows the headline metric's *declared* direction (``Metric.higher_is_better``); it
is never inferred from the values. Rows without a usable headline (None/NaN) rank last, unranked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmark.metadata import TaskMetadata
from evaluator.store import RECORD_FORMAT, Evaluation, LeaderboardRow, Submission

__all__ = ["RankedRow", "breakdown_blocks", "clean_number", "group_block", "headline_of", "metric_block", "rank_rows"]


def clean_number(value: Any) -> float | None:
    """A finite float, or None for anything missing, non-numeric, NaN or infinite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def metric_block(ev: Evaluation) -> dict[str, dict[str, Any]]:
    """``{metric: {"value", "ci_low", "ci_high"}}`` from the aggregate JSON, tolerating odd shapes."""
    raw = (ev.metrics or {}).get("metrics") if isinstance(ev.metrics, dict) else None
    out: dict[str, dict[str, Any]] = {}
    for name, entry in (raw or {}).items():
        if isinstance(entry, dict):
            out[str(name)] = {k: clean_number(entry.get(k)) for k in ("value", "ci_low", "ci_high")}
        else:
            out[str(name)] = {"value": clean_number(entry), "ci_low": None, "ci_high": None}
    return out


def group_block(ev: Evaluation) -> dict[str, dict[str, Any]]:
    """``{group: {"n": int, metric: value, ...}}`` from the aggregate JSON."""
    raw = (ev.metrics or {}).get("groups") if isinstance(ev.metrics, dict) else None
    out: dict[str, dict[str, Any]] = {}
    for group, entry in (raw or {}).items():
        if isinstance(entry, dict):
            out[str(group)] = {k: (v if k == "n" else clean_number(v)) for k, v in entry.items()}
    return out


def breakdown_blocks(ev: Evaluation) -> dict[str, dict[str, dict[str, Any]]]:
    """``{breakdown: {slice: {"n": int, metric: value, ...}}}`` from the aggregate JSON; empty for
    summaries stored before breakdowns existed (the key is optional in record format 2)."""
    raw = (ev.metrics or {}).get("breakdowns") if isinstance(ev.metrics, dict) else None
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, slices in (raw or {}).items():
        if isinstance(slices, dict):
            out[str(name)] = {str(s): {k: (v if k == "n" else clean_number(v)) for k, v in entry.items()}
                              for s, entry in slices.items() if isinstance(entry, dict)}
    return out


def headline_of(ev: Evaluation, meta: TaskMetadata) -> tuple[float | None, float | None, float | None]:
    """(value, ci_low, ci_high) of the task's *current* headline metric for an evaluation."""
    if ev.headline_metric == meta.headline:
        return clean_number(ev.headline), clean_number(ev.headline_ci_low), clean_number(ev.headline_ci_high)
    entry = metric_block(ev).get(meta.headline, {})
    return entry.get("value"), entry.get("ci_low"), entry.get("ci_high")


@dataclass
class RankedRow:
    rank: int | None
    evaluation: Evaluation
    submission: Submission
    headline: float | None
    ci_low: float | None
    ci_high: float | None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_version: bool = True

    @property
    def _spec(self) -> dict[str, Any]:
        return self.submission.meta if isinstance(self.submission.meta, dict) else {}

    @property
    def baseline(self) -> bool:
        return bool(self._spec.get("baseline", False))

    @property
    def floor(self) -> bool:
        """A no-skill reference (``floor: true`` in its submission.yaml): shown, never ranked."""
        return self._spec.get("floor") is True

    def in_sample(self, split: str) -> bool:
        """Whether the method's shipped parameters were fitted on this split's public answers
        (``fitted_on`` in its submission.yaml): its score there is not a measure of skill."""
        fitted = self._spec.get("fitted_on")
        return isinstance(fitted, list) and split in fitted

    @property
    def finished_at(self) -> datetime | None:
        return self.evaluation.finished_at

    @property
    def newer_record_format(self) -> bool:
        return (self.evaluation.record_format or 0) > RECORD_FORMAT

    def to_json(self, meta: TaskMetadata) -> dict[str, Any]:
        ev = self.evaluation
        return {
            "rank": self.rank,
            "submission": self.submission.name,
            "baseline": self.baseline,
            "floor": self.floor,
            "evaluation_id": ev.id,
            "headline_metric": meta.headline,
            "headline": self.headline,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "metrics": self.metrics,
            "groups": self.groups,
            "n_failed": ev.n_failed,
            "n_instances": ev.n_instances,
            "runtime_s": clean_number(ev.runtime_s),
            "status": ev.status,
            "task_version": ev.task_version,
            "dataset_revision": ev.dataset_revision,
            "finished_at": ev.finished_at.isoformat() if ev.finished_at else None,
        }


def rank_rows(rows: list[LeaderboardRow], meta: TaskMetadata) -> list[RankedRow]:
    """Sort by the headline metric in its declared direction; equal values share a rank
    (1, 1, 3); missing/NaN headlines go last with rank None. Ties are listed by name."""
    higher = meta.headline_metric.higher_is_better
    ranked: list[RankedRow] = []
    for r in rows:
        value, lo, hi = headline_of(r.evaluation, meta)
        ranked.append(RankedRow(rank=None, evaluation=r.evaluation, submission=r.submission,
                                headline=value, ci_low=lo, ci_high=hi,
                                metrics=metric_block(r.evaluation), groups=group_block(r.evaluation),
                                current_version=r.evaluation.task_version == meta.version))

    def key(row: RankedRow) -> tuple:
        if row.headline is None:
            return (1, 0.0, row.submission.name)
        return (0, -row.headline if higher else row.headline, row.submission.name)

    ranked.sort(key=key)
    previous: float | None = None
    for position, row in enumerate(ranked, start=1):
        if row.headline is None:
            break
        row.rank = ranked[position - 2].rank if position > 1 and row.headline == previous else position
        previous = row.headline
    return ranked
