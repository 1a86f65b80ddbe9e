"""The report of a pull request's evaluations: the newest evaluation of each named submission on each
task of a split, its rank among the stored results there, and its failed instances. One model,
built once here, behind both ``phasebench ci report-data`` (JSON that scripts/pr_report.py renders)
and ``phasebench results report`` (text or Markdown)."""
from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict

from benchmark.dataset import instance_results_public
from benchmark.registry import UnknownNameError
from benchmark.task import get_task

from ..store import FINISHED, LeaderboardRow, ResultsStore
from .ranking import rank_rows
from .summary import clean_number

__all__ = ["NOT_EVALUATED", "Report", "ReportFailure", "ReportRow", "build_report"]

#: The status of a row for a submission with no evaluation on the split.
NOT_EVALUATED = "not evaluated"


class ReportRow(BaseModel):
    """One (submission, task): only ``submission`` and ``status`` for one that was not evaluated."""
    model_config = ConfigDict(extra="forbid")

    submission: str
    task: str | None = None
    status: str
    metric: str | None = None
    higher_is_better: bool | None = None   # None: the task is not one this evaluator knows
    headline: float | None = None           # None for a missing or non-finite headline (JSON has no NaN)
    ci_low: float | None = None
    ci_high: float | None = None
    rank: int | None = None                 # among the ranked results stored for the task and split
    ranked: int | None = None               # how many were ranked
    n_failed: int | None = None
    n_instances: int | None = None
    runtime_s: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class ReportFailure(BaseModel):
    """A failed instance, or ``instance="(evaluation)"`` for the note of an evaluation that stopped."""
    model_config = ConfigDict(extra="forbid")

    submission: str
    task: str
    instance: str
    status: str
    error: str


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: str
    rows: list[ReportRow]
    failures: list[ReportFailure]
    n_failures: int                         # all of them, also when ``failures`` holds only the first few

    @property
    def all_finished(self) -> bool:
        """Every named submission has a finished evaluation of every task it was evaluated on."""
        return all(r.finished for r in self.rows)

    def to_json(self, max_failures: int) -> dict:
        """The JSON that ``phasebench ci report-data`` writes: the first ``max_failures`` failures
        (the count says how many there were); a not-evaluated row has only its two keys."""
        shown = self.model_copy(update={"failures": self.failures[:max_failures]})
        return shown.model_dump(mode="json", exclude_unset=True)


def build_report(store: ResultsStore, names: list[str], split: str) -> Report:
    rows: list[ReportRow] = []
    failures: list[ReportFailure] = []
    for name in names:
        newest: dict[str, LeaderboardRow] = {}
        for row in store.evaluations_of(name):  # newest first
            if row.evaluation.split == split:
                newest.setdefault(row.evaluation.task, row)
        if not newest:
            rows.append(ReportRow(submission=name, status=NOT_EVALUATED))
            continue
        for task_name, row in sorted(newest.items()):
            ev = row.evaluation
            try:
                meta = get_task(task_name).metadata
            except UnknownNameError:
                meta = None
            rank = ranked = None
            if meta is not None and ev.status in FINISHED:
                board = rank_rows(store.latest_finished(task_name, split), meta)
                mine = next((r for r in board if r.evaluation.id == ev.id), None)
                if mine is not None and mine.rank is not None:
                    rank, ranked = mine.rank, sum(r.rank is not None for r in board)
            rows.append(ReportRow(
                submission=name, task=task_name, status=ev.status, metric=ev.headline_metric,
                higher_is_better=meta.headline_metric.higher_is_better if meta else None,
                headline=clean_number(ev.headline), ci_low=clean_number(ev.headline_ci_low),
                ci_high=clean_number(ev.headline_ci_high), rank=rank, ranked=ranked, n_failed=ev.n_failed,
                n_instances=ev.n_instances, runtime_s=clean_number(ev.runtime_s)))
            full = store.evaluation(ev.id, with_instances=True)
            assert full is not None, f"evaluation {ev.id} was listed a moment ago"
            failed = [inst for inst in full.instances if inst.status != "ok"]
            if failed and not instance_results_public(split):
                # which instance failed, and its error, are the hidden split's to keep: counts only
                counts = Counter(inst.status for inst in failed)
                failures.append(ReportFailure(
                    submission=name, task=task_name, instance=f"({len(failed)} on the {split} split)",
                    status=", ".join(f"{k}: {v}" for k, v in sorted(counts.items())),
                    error=f"per-instance failures of the hidden {split} split are not published"))
            else:
                failures += [ReportFailure(submission=name, task=task_name, instance=inst.instance_id,
                                           status=inst.status, error=inst.error or "") for inst in failed]
            if ev.note:
                failures.append(ReportFailure(submission=name, task=task_name, instance="(evaluation)",
                                              status=ev.status, error=ev.note))
    return Report(split=split, rows=rows, failures=failures, n_failures=len(failures))
