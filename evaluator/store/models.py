"""The results database: every score with its provenance.

RECORD_FORMAT (defined with the summary's model, evaluator.results.summary) is the version of what
the JSON columns (metrics, groups, metadata, library versions) contain. Those columns are
schemaless to the database, which is why they are fragile: a reader that assumes a key written by
a newer evaluator breaks silently. Bump RECORD_FORMAT when their content changes; readers parse
``Evaluation.metrics`` through that model, which reads every older format and flags a newer one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..results.summary import RECORD_FORMAT

__all__ = ["Base", "Submission", "Evaluation", "InstanceResult", "EvaluationStatus",
           "InstanceStatus", "FINISHED", "Job", "JobState", "BoardSnapshotRow"]


class EvaluationStatus:
    RUNNING = "running"          # in progress, or the process died: never counts as a result
    COMPLETE = "complete"        # every instance answered and was scored
    PARTIAL = "partial"          # finished; some instances failed (they count at the worst value)
    INTERRUPTED = "interrupted"  # stopped by the operator or a crash the evaluator saw
    FAILED = "failed"            # the evaluation itself could not run (infrastructure, not the method)


FINISHED = (EvaluationStatus.COMPLETE, EvaluationStatus.PARTIAL)


class InstanceStatus:
    OK = "ok"
    ERROR = "error"              # the method raised
    TIMEOUT = "timeout"
    MEMORY = "memory"
    OUTPUT = "output"            # output larger than allowed
    INVALID = "invalid"          # wrong type, shape, NaN/inf
    CRASH = "crash"              # the worker died without an answer
    BUDGET = "budget"            # asked a black-box oracle for more forward passes than allowed


def _now() -> datetime:
    return datetime.now(timezone.utc)


def storable_text(value: str) -> str:
    """NUL and lone surrogates spelled out (``\\x00``, ``\\udc80``), everything else kept: PostgreSQL
    refuses NUL in text and no driver encodes a lone surrogate, so one such byte in a method's error
    message once failed the insert and, with it, the whole run."""
    return value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class StoredText(TypeDecorator):
    """Text from outside the evaluator's control (a method's error, a stop reason): always storable."""
    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else storable_text(str(value))


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON}


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("name", "code_sha256", name="uq_submission_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    meta: Mapped[dict] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    evaluations: Mapped[list["Evaluation"]] = relationship(back_populates="submission")


class Evaluation(Base):
    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_eval_lookup", "task", "split", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_format: Mapped[int] = mapped_column(Integer, default=RECORD_FORMAT)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    task: Mapped[str] = mapped_column(String(100))
    task_version: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(20))
    dataset_revision: Mapped[str] = mapped_column(String(100))
    evaluator_version: Mapped[str] = mapped_column(String(50))
    sandbox: Mapped[str] = mapped_column(String(50))
    sandbox_info: Mapped[dict | None] = mapped_column(JSON)  # e.g. the container image digest
    device: Mapped[str] = mapped_column(String(50))
    hardware: Mapped[dict] = mapped_column(JSON)
    library_versions: Mapped[dict] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20), default=EvaluationStatus.RUNNING)
    headline_metric: Mapped[str] = mapped_column(String(100))
    headline: Mapped[float | None] = mapped_column(Float)
    headline_ci_low: Mapped[float | None] = mapped_column(Float)
    headline_ci_high: Mapped[float | None] = mapped_column(Float)
    n_instances: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    runtime_s: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict | None] = mapped_column(JSON)     # evaluator.results.summary.EvaluationSummary
    note: Mapped[str | None] = mapped_column(StoredText)

    submission: Mapped[Submission] = relationship(back_populates="evaluations")
    instances: Mapped[list["InstanceResult"]] = relationship(
        back_populates="evaluation", cascade="all, delete-orphan", order_by="InstanceResult.instance_id")


class InstanceResult(Base):
    __tablename__ = "instance_results"
    __table_args__ = (UniqueConstraint("evaluation_id", "instance_id", name="uq_instance_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column("group_name", String(100))
    status: Mapped[str] = mapped_column(String(20))
    metrics: Mapped[dict] = mapped_column(JSON)
    runtime_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(StoredText)
    # Task-defined scalars for plots (e.g. predicted and true grok step, n/d and L0): what the
    # task's instance_details returned. Schemaless like metrics, hence RECORD_FORMAT 2.
    details: Mapped[dict | None] = mapped_column(JSON)

    evaluation: Mapped[Evaluation] = relationship(back_populates="instances")


class BoardSnapshotRow(Base):
    """What a task's board derives from its finished evaluations (rank intervals, skill against the
    floor, detectable difference), computed by the evaluator when an evaluation finishes so that the
    read-only website need not: one row per (task, task version, split), replaced by the next. The
    payload is :class:`evaluator.results.board.BoardSnapshot` (versioned by its ``snapshot_format``);
    ``fingerprint`` is the board's (:meth:`ResultsStore.board_fingerprint`, as JSON) it was computed for."""
    __tablename__ = "board_snapshots"
    __table_args__ = (UniqueConstraint("task", "task_version", "split", name="uq_board_snapshot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(100))
    task_version: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(Text)
    snapshot_format: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    payload: Mapped[dict] = mapped_column(JSON)


class BoardRowStored(Base):
    """A board as its readers show it, one record per row (and a header and the overall ranking's
    entries), stored with the board's snapshot and replaced with it: a page reads the slice of rows
    it shows. ``payload`` is JSON text (evaluator.results.board.board_rows), spliced into answers as
    stored; ``fingerprint`` is the snapshot's."""
    __tablename__ = "board_rows"
    __table_args__ = (Index("ix_board_rows_slice", "task", "task_version", "split", "section", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task: Mapped[str] = mapped_column(String(100))
    task_version: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(Text)
    section: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    row_task_version: Mapped[int] = mapped_column(Integer)
    evaluation_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class BoardRowRecord:
    """One stored record of a board (see :class:`BoardRowStored`)."""
    section: str
    position: int
    task_version: int
    evaluation_id: int | None
    payload: str


class JobState:
    QUEUED = "queued"            # published to the broker, not yet picked up (or waiting to be retried)
    RUNNING = "running"          # a worker has claimed it
    DONE = "done"                # finished: evaluation_id names the (possibly reused) evaluation
    FAILED = "failed"            # gave up: reason says why (never the method's fault, see Job.reason)


class Job(Base):
    """One (submission, task, split) evaluation run through the job queue (``evaluator.queue``)."""
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_queue_state", "queue", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)   # the broker message's task id
    queue: Mapped[str] = mapped_column(String(200))
    submission_name: Mapped[str] = mapped_column(String(200), index=True)
    submission_dir: Mapped[str] = mapped_column(Text)
    code_sha256: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(100))
    split: Mapped[str] = mapped_column(String(20))
    sandbox: Mapped[str] = mapped_column(String(50))
    device: Mapped[str] = mapped_column(String(50))
    force: Mapped[bool] = mapped_column(default=False)
    options: Mapped[dict] = mapped_column(JSON)          # data_dir, private_dir, limit overrides
    state: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED)
    reason: Mapped[str | None] = mapped_column(StoredText)  # why it failed, or why an attempt was retried
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    enqueued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
