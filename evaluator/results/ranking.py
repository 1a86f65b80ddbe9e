"""Turn stored evaluations into ranked leaderboard rows, shared by the website's pages and API and
by the evaluator's reports, so that all of them show the same order.

The order follows the headline metric's *declared* direction (``Metric.higher_is_better``); it
is never inferred from the values. Rows without a usable headline (None/NaN) rank last, unranked.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from benchmark.metadata import TaskMetadata

from ..store import Evaluation, LeaderboardRow, Submission
from .summary import EvaluationSummary, clean_number

__all__ = ["RankedRow", "headline_of", "rank_rows", "summary_of"]


def summary_of(ev: Evaluation) -> EvaluationSummary:
    """The evaluation's stored summary, read through the model (tolerantly: see .summary)."""
    return EvaluationSummary.from_stored(ev.metrics, ev.record_format)


def headline_of(ev: Evaluation, meta: TaskMetadata,
                read_summary: Callable[[Evaluation], EvaluationSummary] = summary_of
                ) -> tuple[float | None, float | None, float | None]:
    """(value, ci_low, ci_high) of the task's *current* headline metric for an evaluation (from its
    columns; from its summary only when it was stored under another headline)."""
    if ev.headline_metric == meta.headline:
        return clean_number(ev.headline), clean_number(ev.headline_ci_low), clean_number(ev.headline_ci_high)
    entry = read_summary(ev).metrics.get(meta.headline)
    return (None, None, None) if entry is None else (entry.value, entry.ci_low, entry.ci_high)


@dataclass
class RankedRow:
    rank: int | None
    evaluation: Evaluation
    submission: Submission
    headline: float | None
    ci_low: float | None
    ci_high: float | None
    # Read on first use: ranking needs only the headline columns, and a page of 100 rows of a
    # 1,000-row board should not parse the 900 summaries it does not show.
    read_summary: Callable[[], EvaluationSummary]
    current_version: bool = True

    @cached_property
    def summary(self) -> EvaluationSummary:
        return self.read_summary()

    # cached: a page reads them once per cell
    @cached_property
    def metrics(self) -> dict[str, dict[str, float | None]]:
        """``{metric: {"value", "ci_low", "ci_high"}}``."""
        return self.summary.metric_block()

    @cached_property
    def groups(self) -> dict[str, dict[str, Any]]:
        """``{group: {"n": int, metric: value, ...}}``."""
        return self.summary.group_block()

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


def rank_rows(rows: list[LeaderboardRow], meta: TaskMetadata,
              read_summary: Callable[[Evaluation], EvaluationSummary] = summary_of) -> list[RankedRow]:
    """Sort by the headline metric in its declared direction; equal values share a rank
    (1, 1, 3); missing/NaN headlines go last with rank None. Ties are listed by name.
    ``read_summary`` may serve summaries parsed before (a finished evaluation's never changes)."""
    higher = meta.headline_metric.higher_is_better
    ranked: list[RankedRow] = []
    for r in rows:
        value, lo, hi = headline_of(r.evaluation, meta, read_summary)
        ranked.append(RankedRow(rank=None, evaluation=r.evaluation, submission=r.submission,
                                headline=value, ci_low=lo, ci_high=hi,
                                read_summary=lambda ev=r.evaluation: read_summary(ev),
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
