"""What a worker does with one job, apart from Celery: claim it, settle what an earlier attempt
left, evaluate, record the outcome.

Three kinds of failure, three outcomes:

* the method fails (raises, times out, answers garbage): that is the evaluation's result, stored
  per instance by the runner; the job is ``done``;
* the job cannot be evaluated as given (invalid submission, code changed since it was enqueued,
  unknown task, missing or corrupt data): the job is ``failed`` with the reason;
* the infrastructure fails (sandbox, database, a lost worker): :data:`INFRA_ERRORS` are raised
  to the caller, which retries the job; the attempt's evaluation is marked failed or interrupted
  and never counts against the submission.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from benchmark.dataset import DataError, open_split
from benchmark.registry import UnknownNameError
from benchmark.task import get_task

from ..runner import evaluate_submission
from ..sandbox import SandboxError, get_sandbox
from ..store import FINISHED, ResultsStore, make_engine
from ..store.jobs import JobStore
from ..store.repository import EvaluationSuperseded
from ..submission import SubmissionError, load_submission
from .config import QueueConfig

__all__ = ["INFRA_ERRORS", "JobResult", "execute_job", "engine_for"]

log = logging.getLogger(__name__)

#: Failures of the machinery, not of the submission: the job is retried.
INFRA_ERRORS: tuple[type[BaseException], ...] = (
    SandboxError, sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
    sa_exc.TimeoutError, ConnectionError)

_engines: dict[tuple[int, str], Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine per process and URL (a pool must never cross a fork: Celery's pool forks)."""
    key = (os.getpid(), url)
    if key not in _engines:
        _engines[key] = make_engine(url)
    return _engines[key]


@dataclass(frozen=True)
class JobResult:
    job_id: int
    state: str                      # what this attempt did: done, failed, skipped
    evaluation_id: int | None = None
    reason: str | None = None


def execute_job(job_id: int, config: QueueConfig, worker: str, retry_reason: str | None = None) -> JobResult:
    """One attempt at a job. ``retry_reason``: why the previous attempt is being retried (recorded
    on the job; it comes with the retry because the database may not have been reachable)."""
    engine = engine_for(config.database)
    jobs, store = JobStore(engine), ResultsStore(engine)
    job = jobs.claim(job_id, worker, reason=retry_reason)
    if job is None:
        return JobResult(job_id, "skipped", reason="already done or failed (a repeated delivery)")
    if job.attempts > config.max_attempts:
        reason = f"gave up after {job.attempts - 1} attempts that never finished (workers lost)"
        jobs.fail(job_id, reason)
        return JobResult(job_id, "failed", reason=reason)

    previous = jobs.settle_previous_attempt(job)
    if previous in FINISHED and job.evaluation_id is not None:
        # The earlier attempt stored its result, then died before the message was acknowledged.
        jobs.finish(job_id, job.evaluation_id)
        return JobResult(job_id, "done", job.evaluation_id)

    def fail(reason: str) -> JobResult:
        jobs.fail(job_id, reason)
        return JobResult(job_id, "failed", reason=reason)

    try:
        submission = load_submission(Path(job.submission_dir))
    except SubmissionError as exc:
        return fail(f"the submission is invalid: {exc}")
    if submission.code_sha256 != job.code_sha256:
        return fail(f"{job.submission_dir}: the code changed since the job was enqueued (code sha256 "
                    f"{job.code_sha256[:12]} then, {submission.code_sha256[:12]} now); enqueue it again")
    try:
        task = get_task(job.task)
        options = job.options or {}
        split = open_split(task.name, job.split, _path(options.get("data_dir")), _path(options.get("private_dir")))
    except UnknownNameError as exc:
        return fail(f"unknown task on worker {worker}: {exc}")
    except DataError as exc:
        return fail(f"data for {job.task}/{job.split}: {exc}")
    sandbox = get_sandbox(job.sandbox)
    available, why = sandbox.available()
    if not available:
        raise SandboxError(f"sandbox {job.sandbox!r} is unavailable on worker {worker}: {why}")
    # A submission with declared requirements runs on its own image (built once, then cached);
    # a build failure is the submission's, not the worker's.
    try:
        sandbox = sandbox.for_submission(submission, log=log.info)
    except SandboxError as exc:
        return fail(f"{submission.name}: its image could not be built: {exc}")
    overrides = {k: v for k, v in (options.get("limits") or {}).items() if v is not None}
    limits = task.metadata.limits.model_validate({**task.metadata.limits.model_dump(), **overrides})
    try:
        outcome = evaluate_submission(submission, task, split, sandbox, store, device=job.device, force=job.force,
                                      limits=limits, on_start=lambda eid: jobs.record_evaluation(job_id, eid))
    except EvaluationSuperseded as exc:
        # A later attempt owns the job now; this one's work is discarded, not counted.
        log.warning("job %s: %s", job_id, exc)
        return JobResult(job_id, "skipped", reason=str(exc))
    except INFRA_ERRORS:
        raise
    except (DataError, RuntimeError, ValueError) as exc:
        # A corrupt answer file, a scorer bug: the job cannot produce a result as it stands.
        return fail(f"evaluation stopped: {type(exc).__name__}: {exc}")
    jobs.finish(job_id, outcome.evaluation_id)
    return JobResult(job_id, "done", outcome.evaluation_id)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
