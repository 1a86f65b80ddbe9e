"""A job's request: what ``Job.options`` stores, and how a worker reads it back.

A job stores its whole :class:`~evaluator.request.EvaluationRequest` (one submission, one task),
versioned by its ``format``. The columns next to it (submission, code, task, split, sandbox,
device, force) are written from that request, for the queries that list and deduplicate jobs.
Rows written before the request was stored (no ``format``: data_dir, private_dir and the time and
memory limits only) are read from those columns.
"""
from __future__ import annotations

from typing import Any

from ..request import EvaluationRequest
from ..store.models import Job

__all__ = ["job_fields", "request_of"]


def job_fields(request: EvaluationRequest) -> dict[str, Any]:
    """The jobs-table columns of the request of one job (:meth:`EvaluationRequest.for_job`)."""
    [folder], [task] = request.submissions, request.tasks
    return {"submission_dir": str(folder), "code_sha256": request.code_sha256, "task": task,
            "split": request.split, "sandbox": request.sandbox, "device": request.device, "force": request.force,
            "options": request.to_stored()}


def request_of(job: Job) -> EvaluationRequest:
    """The job's request (``pydantic.ValidationError`` naming the field when it cannot run here,
    e.g. a task or sandbox this worker does not know, or a newer format)."""
    options = dict(job.options or {})
    if "format" in options:
        return EvaluationRequest.model_validate(options)
    return EvaluationRequest.model_validate({
        "submissions": [job.submission_dir], "tasks": [job.task], "split": job.split, "sandbox": job.sandbox,
        "device": job.device, "force": job.force, "code_sha256": job.code_sha256,
        "data_dir": options.get("data_dir"), "private_dir": options.get("private_dir"),
        "limits": {k: v for k, v in (options.get("limits") or {}).items() if v is not None}})
