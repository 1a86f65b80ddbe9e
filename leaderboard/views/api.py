"""JSON API. Errors are JSON too: ``{"error", "message", "status"}`` (see ``create_app``)."""
from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, jsonify
from werkzeug.exceptions import NotFound

from benchmark.metadata import TaskMetadata

from .. import db
from ..ranking import group_block, headline_of, metric_block, rank_rows
from . import registered_tasks, reproduce_command, split_arg, task_metadata_or_none, task_or_404

__all__ = ["bp", "task_json", "json_safe"]

bp = Blueprint("api", __name__)


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf (not valid JSON) with None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def task_json(meta: TaskMetadata) -> dict[str, Any]:
    return {
        "name": meta.name,
        "version": meta.version,
        "description": meta.description,
        "headline": meta.headline,
        "metrics": [{"name": m.name, "description": m.description, "higher_is_better": m.higher_is_better,
                     "aggregation": m.aggregation, "best": m.best, "worst": m.worst} for m in meta.metrics],
        "groups": list(meta.groups),
        "dataset": {"repo_id": meta.dataset.repo_id, "config": meta.dataset.config,
                    "revision": meta.dataset.revision},
    }


@bp.get("/tasks")
def tasks():
    return jsonify({"tasks": [task_json(t.metadata) for t in registered_tasks()]})


@bp.get("/tasks/<task>")
def task(task: str):
    return jsonify(task_json(task_or_404(task).metadata))


@bp.get("/tasks/<task>/leaderboard")
def leaderboard(task: str):
    split = split_arg()
    meta = task_or_404(task).metadata
    rows = rank_rows(db.latest_finished(meta.name, split), meta)
    return jsonify(json_safe({
        "task": meta.name, "task_version": meta.version, "split": split, "headline": meta.headline,
        "higher_is_better": meta.headline_metric.higher_is_better,
        "rows": [r.to_json(meta) for r in rows],
    }))


def _iso(dt) -> str | None:  # noqa: ANN001
    return dt.isoformat() if dt else None


@bp.get("/evaluations/<int:evaluation_id>")
def evaluation(evaluation_id: int):
    ev = db.evaluation(evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation with id {evaluation_id}")
    sub = ev.submission
    meta = task_metadata_or_none(ev.task)
    value, lo, hi = headline_of(ev, meta) if meta else (ev.headline, ev.headline_ci_low, ev.headline_ci_high)
    return jsonify(json_safe({
        "id": ev.id,
        "submission": sub.name,
        "baseline": bool((sub.meta or {}).get("baseline", False)) if isinstance(sub.meta, dict) else False,
        "task": ev.task, "task_version": ev.task_version, "split": ev.split,
        "status": ev.status, "note": ev.note,
        "headline_metric": meta.headline if meta else ev.headline_metric,
        "headline": value, "ci_low": lo, "ci_high": hi,
        "metrics": metric_block(ev), "groups": group_block(ev),
        "n_instances": ev.n_instances, "n_failed": ev.n_failed, "runtime_s": ev.runtime_s,
        "provenance": {
            "code_sha256": sub.code_sha256, "git_commit": sub.git_commit,
            "dataset_revision": ev.dataset_revision, "evaluator_version": ev.evaluator_version,
            "sandbox": ev.sandbox, "device": ev.device, "hardware": ev.hardware or {},
            "library_versions": ev.library_versions or {}, "started_at": _iso(ev.started_at),
            "finished_at": _iso(ev.finished_at), "record_format": ev.record_format,
        },
        "reproduce": reproduce_command(ev, sub),
        "instances": [{"instance_id": i.instance_id, "group": i.group, "status": i.status,
                       "metrics": i.metrics or {}, "runtime_s": i.runtime_s, "error": i.error}
                      for i in ev.instances],
    }))
