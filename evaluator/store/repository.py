"""Reads and writes of results. Each write is its own transaction, so a crash loses at most the
instance in flight and never leaves an evaluation that looks finished."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import selectinload

from ..results.summary import EvaluationSummary, SummaryError
from .models import FINISHED, BoardRowRecord, BoardRowStored, BoardSnapshotRow, Evaluation, EvaluationStatus, InstanceResult, Submission
from .session import get_row, session_scope

__all__ = ["ResultsStore", "LeaderboardRow", "EvaluationSuperseded", "InstanceValues"]

# {evaluation_id: [(instance_id, group, value of one metric or None), ...]}
InstanceValues = dict[int, list[tuple[str, str, float | None]]]


class EvaluationSuperseded(RuntimeError):
    """This evaluation was marked stopped by someone else; its process must not finish it."""


@dataclass(frozen=True)
class LeaderboardRow:
    evaluation: Evaluation
    submission: Submission


class ResultsStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- writes -------------------------------------------------------------------------
    def upsert_submission(self, name: str, code_sha256: str, git_commit: str | None, meta: dict[str, Any]) -> int:
        with session_scope(self.engine) as s:
            sub = s.scalars(select(Submission).filter_by(name=name, code_sha256=code_sha256)).first()
            if sub is None:
                sub = Submission(name=name, code_sha256=code_sha256, git_commit=git_commit, meta=meta)
                s.add(sub)
                s.flush()
            return sub.id

    def start_evaluation(self, **fields: Any) -> int:
        with session_scope(self.engine) as s:
            ev = Evaluation(status=EvaluationStatus.RUNNING, **fields)
            s.add(ev)
            s.flush()
            return ev.id

    def add_instance_result(self, evaluation_id: int, **fields: Any) -> None:
        with session_scope(self.engine) as s:
            s.add(InstanceResult(evaluation_id=evaluation_id, **fields))

    def finish_evaluation(self, evaluation_id: int, status: str, summary: EvaluationSummary, headline: str,
                          n_failed: int, runtime_s: float) -> None:
        """Store the summary (validated: see ``EvaluationSummary.for_storage``) and finish the row."""
        head = summary.metrics.get(headline)
        if head is None:
            raise SummaryError(f"evaluation summary not storable: metrics.{headline}: the headline metric is missing")
        with session_scope(self.engine) as s:
            ev = get_row(s, Evaluation, evaluation_id, with_for_update=True)
            if ev.status != EvaluationStatus.RUNNING:
                # Another attempt took over (the job queue marked this row interrupted when it
                # redelivered the job): finishing it too would count the result twice.
                raise EvaluationSuperseded(f"evaluation {evaluation_id} is {ev.status}, not running: "
                                           f"not finished by this process ({ev.note or 'no note'})")
            ev.status = status
            ev.finished_at = datetime.now(timezone.utc)
            ev.headline = head.value
            ev.headline_ci_low = head.ci_low
            ev.headline_ci_high = head.ci_high
            ev.n_instances = summary.n_instances or 0
            ev.n_failed = n_failed
            ev.runtime_s = runtime_s
            ev.metrics = summary.to_stored()

    def put_board_snapshot(self, task: str, task_version: int, split: str, fingerprint: str,
                           snapshot_format: int, payload: dict[str, Any],
                           rows: list[BoardRowRecord] | None = None) -> None:
        """Store a board's snapshot and its rows (one transaction), replacing those of the same
        (task, task version, split)."""
        with session_scope(self.engine) as s:
            row = s.scalars(select(BoardSnapshotRow).filter_by(task=task, task_version=task_version, split=split)
                            .with_for_update()).first()
            if row is None:
                row = BoardSnapshotRow(task=task, task_version=task_version, split=split)
                s.add(row)
            row.fingerprint = fingerprint
            row.snapshot_format = snapshot_format
            row.payload = payload
            row.created_at = datetime.now(timezone.utc)
            s.execute(delete(BoardRowStored).where(BoardRowStored.task == task, BoardRowStored.task_version == task_version,
                                                   BoardRowStored.split == split))
            if rows:
                s.execute(insert(BoardRowStored), [
                    {"task": task, "task_version": task_version, "split": split, "fingerprint": fingerprint,
                     "section": r.section, "position": r.position, "row_task_version": r.task_version,
                     "evaluation_id": r.evaluation_id, "payload": r.payload} for r in rows])

    def mark(self, evaluation_id: int, status: str, note: str) -> None:
        with session_scope(self.engine) as s:
            ev = get_row(s, Evaluation, evaluation_id)
            ev.status = status
            ev.note = note
            ev.finished_at = datetime.now(timezone.utc)

    # --- reads --------------------------------------------------------------------------
    def find_finished(self, code_sha256: str, task: str, task_version: int, split: str,
                      dataset_revision: str, sandbox: str,
                      libraries: Mapping[str, str] | None = None) -> Evaluation | None:
        """The newest finished evaluation with this reuse key: the code's sha256, the task and its
        version, the split, the dataset revision, the sandbox backend (a method can behave
        differently in the container than under bwrap, which is what running it in the container
        checks) and, with ``libraries``, those entries of its recorded library_versions (the
        baselines library's sha256). Anything else (device, limits, workers, image digest) does
        not make a stored result stale; ``--force`` evaluates again regardless."""
        with session_scope(self.engine) as s:
            q = (select(Evaluation).join(Submission)
                 .where(Submission.code_sha256 == code_sha256, Evaluation.task == task,
                        Evaluation.task_version == task_version, Evaluation.split == split,
                        Evaluation.dataset_revision == dataset_revision, Evaluation.sandbox == sandbox,
                        Evaluation.status.in_(FINISHED))
                 .order_by(Evaluation.id.desc()))
            # Compared here, not in SQL: library_versions is JSON, queried differently by each backend.
            for ev in s.scalars(q):
                if all((ev.library_versions or {}).get(k) == v for k, v in (libraries or {}).items()):
                    return ev
            return None

    def evaluation(self, evaluation_id: int, with_instances: bool = False) -> Evaluation | None:
        with session_scope(self.engine) as s:
            opts = [selectinload(Evaluation.submission)]
            if with_instances:
                opts.append(selectinload(Evaluation.instances))
            return s.get(Evaluation, evaluation_id, options=opts)

    def latest_finished(self, task: str, split: str) -> list[LeaderboardRow]:
        """The newest finished evaluation of each submission (by name) on a task and split."""
        with session_scope(self.engine) as s:
            q = (select(Evaluation, Submission).join(Submission)
                 .where(Evaluation.task == task, Evaluation.split == split, Evaluation.status.in_(FINISHED))
                 .order_by(Evaluation.id.desc()))
            seen: set[str] = set()
            rows = []
            for ev, sub in s.execute(q):
                if sub.name in seen:
                    continue
                seen.add(sub.name)
                rows.append(LeaderboardRow(ev, sub))
            return rows

    def board_fingerprint(self, task: str, split: str) -> tuple:
        """A cheap summary that changes whenever the set of finished evaluations of (task, split)
        changes (one indexed aggregate query); finished evaluations are never rewritten."""
        q = (select(func.count(Evaluation.id), func.max(Evaluation.id), func.max(Evaluation.finished_at))
             .where(Evaluation.task == task, Evaluation.split == split, Evaluation.status.in_(FINISHED)))
        with self.engine.connect() as conn:
            count, max_id, max_finished = conn.execute(q).one()
        return (count, max_id, str(max_finished))

    def instance_values(self, evaluation_ids: list[int], metric: str) -> InstanceValues:
        """Every instance's value of ``metric`` (None where absent) for many evaluations, in ONE query."""
        fetched: InstanceValues = {i: [] for i in evaluation_ids}
        if not evaluation_ids:
            return fetched
        value = InstanceResult.metrics[metric].as_float()
        q = (select(InstanceResult.evaluation_id, InstanceResult.instance_id, InstanceResult.group, value)
             .where(InstanceResult.evaluation_id.in_(evaluation_ids)))
        with self.engine.connect() as conn:
            for ev_id, inst, group, v in conn.execute(q):
                fetched[ev_id].append((inst, group, v))
        return fetched

    def board_snapshot(self, task: str, task_version: int, split: str) -> tuple[str, int, dict[str, Any]] | None:
        """(fingerprint, snapshot format, payload) of the stored snapshot of a board, or None."""
        q = (select(BoardSnapshotRow.fingerprint, BoardSnapshotRow.snapshot_format, BoardSnapshotRow.payload)
             .where(BoardSnapshotRow.task == task, BoardSnapshotRow.task_version == task_version,
                    BoardSnapshotRow.split == split))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else (row[0], row[1], row[2])

    def board_snapshots(self) -> list[tuple[str, int, str, str, int, dict[str, Any]]]:
        """(task, task version, split, fingerprint, snapshot format, payload) of every stored snapshot."""
        t = BoardSnapshotRow
        q = (select(t.task, t.task_version, t.split, t.fingerprint, t.snapshot_format, t.payload)
             .order_by(t.task, t.task_version, t.split))
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(q)]  # type: ignore[misc]

    def board_rows(self, task: str, task_version: int, split: str, fingerprint: str, offset: int = 0,
                   limit: int | None = None, with_overall: bool = False) -> list[BoardRowRecord]:
        """The stored records of a board built for ``fingerprint`` (ONE query): its header, floors,
        in-sample and stale rows, the current rows ``[offset, offset + limit)`` (all without a
        limit) and, ``with_overall``, the overall ranking's entries."""
        t = BoardRowStored
        largest = 2**31 - 1          # the column's range: an offset past every row finds none, not an error
        offset = min(offset, largest)
        limit = None if limit is None else min(limit, largest - offset)
        current = t.section == "current"
        if offset or limit is not None:
            current = current & (t.position >= offset)
            if limit is not None:
                current = current & (t.position < offset + limit)
        sections = ["header", "floor", "in-sample", "stale"] + (["overall"] if with_overall else [])
        q = (select(t.section, t.position, t.row_task_version, t.evaluation_id, t.payload)
             .where(t.task == task, t.task_version == task_version, t.split == split, t.fingerprint == fingerprint,
                    t.section.in_(sections) | current))
        with self.engine.connect() as conn:
            return [BoardRowRecord(*r) for r in conn.execute(q)]

    def evaluations_of(self, submission_name: str) -> list[LeaderboardRow]:
        with session_scope(self.engine) as s:
            q = (select(Evaluation, Submission).join(Submission)
                 .where(Submission.name == submission_name).order_by(Evaluation.id.desc()))
            return [LeaderboardRow(ev, sub) for ev, sub in s.execute(q)]
