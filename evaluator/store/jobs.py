"""Reads and writes of the jobs table: the queue's own record of every job, next to the results.

The broker holds the messages; this table holds what a person (or the leaderboard) asks about a
job: its state, how many attempts it took, which worker ran it, why it failed and which evaluation
it produced. Each write is its own transaction, like the rest of the store.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from .models import FINISHED, Evaluation, EvaluationStatus, Job, JobState, Submission
from .session import get_row, session_scope

__all__ = ["JobStore", "JobView", "ACTIVE_STATES", "SweptRow"]

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else "an unknown time"


@dataclass(frozen=True)
class JobView:
    """A job as shown to people: the row, and its place in its queue (1 = next; None unless queued)."""
    job: Job
    position: int | None

    def to_json(self) -> dict[str, Any]:
        j = self.job
        return {
            "id": j.id, "state": j.state, "position": self.position, "reason": j.reason,
            "submission": j.submission_name, "code_sha256": j.code_sha256, "task": j.task, "split": j.split,
            "sandbox": j.sandbox, "device": j.device, "queue": j.queue, "attempts": j.attempts,
            "worker": j.worker, "evaluation_id": j.evaluation_id,
            "enqueued_at": j.enqueued_at.isoformat() if j.enqueued_at else None,
            "started_at": j.started_at.isoformat() if j.started_at else None,
            "finished_at": j.finished_at.isoformat() if j.finished_at else None,
        }


@dataclass(frozen=True)
class SweptRow:
    """A row :meth:`JobStore.sweep` gave up on: a job or an evaluation, and what it was."""
    kind: str              # "job" or "evaluation"
    id: int
    was: str               # its state (job) or status (evaluation) before the sweep
    since: datetime | None
    what: str              # submission, task and split


class JobStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- writes -------------------------------------------------------------------------
    def create(self, **fields: Any) -> Job:
        with session_scope(self.engine) as s:
            job = Job(state=JobState.QUEUED, attempts=0, enqueued_at=_now(), **fields)
            s.add(job)
            s.flush()
            return job

    def delete(self, job_id: int) -> None:
        """Only for a job whose message never reached the broker (enqueue undoes its row)."""
        with session_scope(self.engine) as s:
            job = s.get(Job, job_id)
            if job is not None:
                s.delete(job)

    def claim(self, job_id: int, worker: str, reason: str | None = None) -> Job | None:
        """Start an attempt: running, attempts + 1. None when the job is already done or failed
        (a message delivered again after its job finished: nothing to do)."""
        with session_scope(self.engine) as s:
            job = s.get(Job, job_id, with_for_update=True)
            if job is None or job.state not in ACTIVE_STATES:
                return None
            job.state = JobState.RUNNING
            job.attempts += 1
            job.worker = worker
            job.started_at = _now()
            job.finished_at = None
            if reason:
                job.reason = reason[:2000]
            return job

    def record_evaluation(self, job_id: int, evaluation_id: int) -> None:
        with session_scope(self.engine) as s:
            get_row(s, Job, job_id).evaluation_id = evaluation_id

    def finish(self, job_id: int, evaluation_id: int) -> None:
        with session_scope(self.engine) as s:
            job = get_row(s, Job, job_id)
            # The reason stays: on a done job it tells why an earlier attempt was retried.
            job.state, job.evaluation_id, job.finished_at = JobState.DONE, evaluation_id, _now()

    def fail(self, job_id: int, reason: str) -> None:
        with session_scope(self.engine) as s:
            job = get_row(s, Job, job_id)
            job.state, job.reason, job.finished_at = JobState.FAILED, reason[:2000], _now()

    def requeue(self, job_id: int, reason: str) -> None:
        """Back to queued, waiting for a retry; the reason says what went wrong with the last attempt."""
        with session_scope(self.engine) as s:
            job = s.get(Job, job_id)
            if job is not None and job.state in ACTIVE_STATES:
                job.state, job.reason = JobState.QUEUED, reason[:2000]

    def settle_previous_attempt(self, job: Job) -> str | None:
        """Look at the evaluation an earlier attempt of ``job`` started. Returns its status. One
        that is still 'running' belongs to an attempt that died (its message would not have been
        delivered again otherwise): it is marked interrupted, in the same transaction as the check,
        so that it can never be finished and counted later."""
        if job.evaluation_id is None:
            return None
        with session_scope(self.engine) as s:
            ev = s.get(Evaluation, job.evaluation_id, with_for_update=True)
            if ev is None:
                return None
            if ev.status == EvaluationStatus.RUNNING:
                ev.status = EvaluationStatus.INTERRUPTED
                ev.finished_at = _now()
                ev.note = (f"job {job.id}: attempt {job.attempts - 1} stopped without finishing (worker or "
                           f"database lost); the job was retried as attempt {job.attempts}")
            return ev.status

    def sweep(self, running_before: datetime, queued_before: datetime | None = None,
              dry_run: bool = False) -> list[SweptRow]:
        """Give up on what no worker will ever finish, in one transaction:

        - jobs 'running' since before ``running_before``: their worker died and the broker has no
          message left for them (retries ran out while the database was down, so the last attempt
          could not record its failure); marked failed, and their 'running' evaluation interrupted;
        - with ``queued_before``, jobs still 'queued' since before it (their message was lost);
        - evaluations 'running' since before ``running_before`` that no job points at (a direct
          ``phasebench evaluate`` killed mid-run): marked interrupted.

        Such rows never counted as results; the sweep makes them say so. A message that does arrive
        later for a swept job finds it failed and does nothing (:meth:`claim`)."""
        now = _now()
        stamp = now.strftime("%Y-%m-%d %H:%M UTC")
        out: list[SweptRow] = []
        with session_scope(self.engine) as s:
            stale = Job.state == JobState.RUNNING
            stale = stale & (Job.started_at < running_before)
            cond = stale
            if queued_before is not None:
                cond = cond | ((Job.state == JobState.QUEUED) & (Job.enqueued_at < queued_before))
            jobs = list(s.scalars(select(Job).where(cond).order_by(Job.id).with_for_update()))
            for job in jobs:
                since = job.started_at if job.state == JobState.RUNNING else job.enqueued_at
                out.append(SweptRow("job", job.id, job.state, since, f"{job.submission_name} {job.task}/{job.split}"))
                if dry_run:
                    continue
                why = (f"lost: {job.state} since {_iso(since)} with no worker on it; given up by "
                       f"`phasebench sweep` at {stamp}" + (f" (last: {job.reason})" if job.reason else ""))
                job.state, job.reason, job.finished_at = JobState.FAILED, why[:2000], now
            job_evals = {j.evaluation_id for j in jobs if j.evaluation_id is not None}
            owned = select(Job.evaluation_id).where(Job.evaluation_id.is_not(None), Job.state.in_(ACTIVE_STATES))
            evs = list(s.scalars(select(Evaluation).where(
                Evaluation.status == EvaluationStatus.RUNNING,
                (Evaluation.id.in_(job_evals)) | ((Evaluation.started_at < running_before)
                                                 & Evaluation.id.not_in(owned)))
                .order_by(Evaluation.id).with_for_update()))
            for ev in evs:
                out.append(SweptRow("evaluation", ev.id, ev.status, ev.started_at,
                                    f"submission {ev.submission_id} {ev.task}/{ev.split}"))
                if dry_run:
                    continue
                ev.status, ev.finished_at = EvaluationStatus.INTERRUPTED, now
                ev.note = f"running since {_iso(ev.started_at)} and never finished; marked by `phasebench sweep` at {stamp}"
        return out

    # --- reads --------------------------------------------------------------------------
    def get(self, job_id: int) -> Job | None:
        with session_scope(self.engine) as s:
            return s.get(Job, job_id)

    def find_active(self, code_sha256: str, task: str, split: str, sandbox: str, device: str,
                    queue: str, options: dict[str, Any]) -> Job | None:
        """A queued or running job for the same code and request (``options``: the stored request,
        so other data, limits or workers make another job): enqueueing it again adds nothing."""
        with session_scope(self.engine) as s:
            q = (select(Job).where(Job.code_sha256 == code_sha256, Job.task == task, Job.split == split,
                                   Job.sandbox == sandbox, Job.device == device, Job.queue == queue,
                                   Job.state.in_(ACTIVE_STATES), Job.force.is_(False))
                 .order_by(Job.id))
            # Compared here, not in SQL: options is JSON, queried differently by each backend.
            return next((job for job in s.scalars(q) if job.options == options), None)

    def position(self, job: Job) -> int | None:
        """1 + the queued jobs enqueued before it on the same queue (the broker hands them out in
        that order; a retried job goes to the back of the broker's queue, so this is its place by
        seniority, which is what people ask about)."""
        if job.state != JobState.QUEUED:
            return None
        with session_scope(self.engine) as s:
            ahead = s.scalar(select(func.count(Job.id)).where(
                Job.queue == job.queue, Job.state == JobState.QUEUED, Job.id < job.id))
        return int(ahead or 0) + 1

    def list(self, states: Iterable[str] | None = None, submission: str | None = None,
             limit: int = 200) -> list[JobView]:
        """Jobs newest first, each with its queue position (computed for all queued jobs at once)."""
        with session_scope(self.engine) as s:
            q = select(Job).order_by(Job.id.desc()).limit(limit)
            states = list(states or [])
            if states:
                q = q.where(Job.state.in_(states))
            if submission:
                q = q.where(Job.submission_name == submission)
            jobs = list(s.scalars(q))
            queues = {j.queue for j in jobs if j.state == JobState.QUEUED}
            rank: dict[int, int] = {}
            for queue in queues:
                ids = s.scalars(select(Job.id).where(Job.queue == queue, Job.state == JobState.QUEUED)
                                .order_by(Job.id))
                rank.update({job_id: i + 1 for i, job_id in enumerate(ids)})
        return [JobView(j, rank.get(j.id)) for j in jobs]

    def counts(self) -> dict[str, int]:
        with session_scope(self.engine) as s:
            rows = s.execute(select(Job.state, func.count(Job.id)).group_by(Job.state))
            return {state: int(n) for state, n in rows}

    def finished_evaluations(self, job_id: int) -> int:
        """How many finished (counted) evaluations exist for the job's code, task and split: more
        than one means a result was stored twice."""
        with session_scope(self.engine) as s:
            job = get_row(s, Job, job_id)
            n = s.scalar(select(func.count(Evaluation.id)).join(Submission).where(
                Submission.code_sha256 == job.code_sha256, Evaluation.task == job.task,
                Evaluation.split == job.split, Evaluation.status.in_(FINISHED)))
            return int(n or 0)

