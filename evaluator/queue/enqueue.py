"""Enqueue: one job per (submission, task), its request recorded in the jobs table, then published."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Sequence

from celery import Celery

from ..request import EvaluationRequest
from ..store.jobs import JobStore
from ..submission import Submission
from .app import TASK_NAME
from .config import QueueConfig
from .job_request import job_fields

__all__ = ["EnqueuedJob", "enqueue_submission"]


@dataclass(frozen=True)
class EnqueuedJob:
    job_id: int
    submission: str
    task: str
    split: str
    position: int | None
    reused: bool                 # an identical job was already queued or running: that one is returned


def enqueue_submission(app: Celery, config: QueueConfig, jobs: JobStore, request: EvaluationRequest,
                       submission: Submission, tasks: Sequence[str]) -> list[EnqueuedJob]:
    """Jobs for ``submission`` (one of ``request``'s) on each of ``tasks`` (each one it answers),
    each job with ``request`` narrowed to it."""
    out = []
    queue = config.queue_for(request.device)
    for task_name in tasks:
        if task_name not in submission.spec.tasks:
            raise ValueError(f"{submission.folder}: the submission does not answer task {task_name!r} "
                             f"(it answers {', '.join(submission.spec.tasks)})")
        fields = job_fields(request.for_job(submission, task_name))
        if not request.force:
            existing = jobs.find_active(submission.code_sha256, task_name, request.split, request.sandbox,
                                        request.device, queue, fields["options"])
            if existing is not None:
                out.append(EnqueuedJob(existing.id, submission.name, task_name, request.split,
                                       jobs.position(existing), True))
                continue
        message_id = str(uuid.uuid4())
        # The row first: a worker that receives the message must find its job.
        job = jobs.create(message_id=message_id, queue=queue, submission_name=submission.name, **fields)
        try:
            app.send_task(TASK_NAME, args=[job.id], task_id=message_id, queue=queue, routing_key=queue)
        except Exception:
            jobs.delete(job.id)  # never published: no job
            raise
        out.append(EnqueuedJob(job.id, submission.name, task_name, request.split, jobs.position(job), False))
    return out
