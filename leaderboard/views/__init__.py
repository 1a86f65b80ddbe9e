"""The website's blueprints (HTML pages and the JSON API) and the lookups they share."""
from __future__ import annotations

import shlex
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest, NotFound

from benchmark.dataset import SPLITS
from benchmark.metadata import TaskMetadata
from benchmark.registry import UnknownNameError
from benchmark.task import Task, all_tasks, get_task
from evaluator.store import Evaluation, Submission

__all__ = ["SPLITS", "split_arg", "task_or_404", "task_metadata_or_none", "registered_tasks", "group_columns",
           "metric_columns", "reproduce_command"]


def split_arg(default: str = "dev") -> str:
    """The ``?split=`` query argument; 400 unless it is one of the benchmark's splits."""
    split = request.args.get("split", default)
    if split not in SPLITS:
        raise BadRequest(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def task_or_404(name: str) -> Task:
    try:
        return get_task(name)
    except UnknownNameError as e:
        raise NotFound(str(e)) from None


def task_metadata_or_none(name: str) -> TaskMetadata | None:
    """A task's metadata, or None for a task that is no longer registered (old results)."""
    try:
        return get_task(name).metadata
    except UnknownNameError:
        return None


def registered_tasks() -> list[Task]:
    return list(all_tasks())


def group_columns(groups_seen: list[dict[str, Any]], meta: TaskMetadata | None) -> list[str]:
    """Groups that appear in any of ``groups_seen``, in the task's declared order, then the rest."""
    seen: set[str] = set()
    for g in groups_seen:
        seen.update(g)
    declared = [g for g in (meta.groups if meta else []) if g in seen]
    return declared + sorted(seen - set(declared))


def metric_columns(names_seen: list[dict[str, Any]], meta: TaskMetadata | None) -> list[str]:
    """Metric names, declared ones first in declared order, then any others that appear."""
    seen: set[str] = set()
    for m in names_seen:
        seen.update(m)
    declared = [m.name for m in meta.metrics] if meta else []
    return declared + sorted(seen - set(declared))


def reproduce_command(ev: Evaluation, submission: Submission) -> str:
    """The command that reproduces an evaluation (shell-quoted; the template escapes it for HTML)."""
    parts = ["phasebench", "evaluate", f"submissions/{submission.name}", "--task", ev.task,
             "--split", ev.split, "--sandbox", ev.sandbox, "--device", ev.device]
    return " ".join(shlex.quote(str(p)) for p in parts)

