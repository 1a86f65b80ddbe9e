"""What a worker does with one job, apart from Celery: claim it, settle what an earlier attempt
left, evaluate its request (:func:`evaluator.request.evaluate_request`, as `phasebench evaluate`
does), record the outcome.

Three kinds of failure, three outcomes:

* the method fails (raises, times out, answers garbage): that is the evaluation's result, stored
  per instance by the runner; the job is ``done``;
* the job cannot be evaluated as given (invalid submission, code changed since it was enqueued,
  unknown task, missing or corrupt data, an image that cannot be built): the job is ``failed``
  with the reason;
* the infrastructure fails (sandbox, database, a lost worker, a worker that cannot run the
  request's sandbox or device): :data:`INFRA_ERRORS` are raised
  to the caller, which retries the job; the attempt's evaluation is marked failed or interrupted
  and never counts against the submission.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from ..request import Evaluated, MachineUnfit, evaluate_request, first_error
from ..sandbox import SandboxError
from ..store import FINISHED, ResultsStore, make_engine
from ..store.jobs import JobStore
from ..store.repository import EvaluationSuperseded
from .config import QueueConfig
from .job_request import request_of

__all__ = ["INFRA_ERRORS", "JobResult", "execute_job", "engine_for"]

log = logging.getLogger(__name__)

#: Failures of the machinery, not of the submission: the job is retried.
INFRA_ERRORS: tuple[type[BaseException], ...] = (
    SandboxError, MachineUnfit, sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
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
        request = request_of(job)
    except ValidationError as exc:
        where, msg = first_error(exc)
        return fail(f"the job cannot run on worker {worker}: {where}: {msg}")
    # One submission on one task: one result, or the reason there is none.
    results = evaluate_request(request, store, warn=log.warning, info=log.info,
                               on_start=lambda eid: jobs.record_evaluation(job_id, eid))
    try:
        result = next(results)
    except EvaluationSuperseded as exc:
        # A later attempt owns the job now; this one's work is discarded, not counted.
        log.warning("job %s: %s", job_id, exc)
        return JobResult(job_id, "skipped", reason=str(exc))
    except INFRA_ERRORS:
        raise
    except (RuntimeError, ValueError) as exc:
        # A scorer bug, a summary that cannot be stored: the job cannot produce a result as it stands.
        return fail(f"evaluation stopped: {type(exc).__name__}: {exc}")
    finally:
        results.close()
    if isinstance(result, Evaluated):
        jobs.finish(job_id, result.outcome.evaluation_id)
        return JobResult(job_id, "done", result.outcome.evaluation_id)
    if result.kind == "infra" and result.error is not None:
        raise result.error
    problems = "; ".join(result.problems)
    return fail({"data": f"data for {job.task}/{job.split}: {result.reason}"}.get(
        result.kind, f"{result.reason}{': ' + problems if problems else ''}"))

