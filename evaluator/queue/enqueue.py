"""Enqueue: one job per (submission, task, split), recorded in the jobs table, then published."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from celery import Celery

from benchmark.task import get_task

from ..store.jobs import JobStore
from ..submission import Submission
from .app import TASK_NAME
from .config import QueueConfig

__all__ = ["EnqueuedJob", "enqueue_submission"]


@dataclass(frozen=True)
class EnqueuedJob:
    job_id: int
    submission: str
    task: str
    split: str
    position: int | None
    reused: bool                 # an identical job was already queued or running: that one is returned


def enqueue_submission(app: Celery, config: QueueConfig, jobs: JobStore, submission: Submission,
                       tasks: Sequence[str], split: str, sandbox: str = "bwrap", device: str = "cpu",
                       force: bool = False, data_dir: Path | None = None, private_dir: Path | None = None,
                       limits: dict | None = None) -> list[EnqueuedJob]:
    """Jobs for ``submission`` on each of ``tasks`` (every task must be one it answers)."""
    out = []
    queue = config.queue_for(device)
    for task_name in tasks:
        get_task(task_name)  # an unknown task fails here, at the desk, not on a worker
        if task_name not in submission.spec.tasks:
            raise ValueError(f"{submission.folder}: the submission does not answer task {task_name!r} "
                             f"(it answers {', '.join(submission.spec.tasks)})")
        if not force:
            existing = jobs.find_active(submission.code_sha256, task_name, split, sandbox, device, queue)
            if existing is not None:
                out.append(EnqueuedJob(existing.id, submission.name, task_name, split, jobs.position(existing), True))
                continue
        message_id = str(uuid.uuid4())
        # The row first: a worker that receives the message must find its job.
        job = jobs.create(message_id=message_id, queue=queue, submission_name=submission.name,
                          submission_dir=str(submission.folder.resolve()), code_sha256=submission.code_sha256,
                          task=task_name, split=split, sandbox=sandbox, device=device, force=force,
                          options={"data_dir": str(data_dir.resolve()) if data_dir else None,
                                   "private_dir": str(private_dir.resolve()) if private_dir else None,
                                   "limits": limits or {}})
        try:
            app.send_task(TASK_NAME, args=[job.id], task_id=message_id, queue=queue, routing_key=queue)
        except Exception:
            jobs.delete(job.id)  # never published: no job
            raise
        out.append(EnqueuedJob(job.id, submission.name, task_name, split, jobs.position(job), False))
    return out
