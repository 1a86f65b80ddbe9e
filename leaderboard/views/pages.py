"""Server-rendered HTML pages (no JavaScript needed)."""
from __future__ import annotations

from flask import Blueprint, render_template
from werkzeug.exceptions import NotFound

from evaluator.store import FINISHED, RECORD_FORMAT

from .. import db
from ..ranking import group_block, metric_block, rank_rows
from . import (SPLITS, group_columns, metric_columns, registered_tasks, reproduce_command, split_arg,
               task_metadata_or_none, task_or_404)

__all__ = ["bp"]

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    split = split_arg()
    cards = []
    for task in registered_tasks():
        meta = task.metadata
        rows = rank_rows(db.latest_finished(meta.name, split), meta)
        leader = next((r for r in rows if r.rank is not None), None)
        cards.append({"meta": meta, "n_submissions": len(rows), "leader": leader})
    return render_template("index.html", cards=cards, split=split, splits=SPLITS)


@bp.get("/tasks/<task>")
def task_page(task: str):
    split = split_arg()
    meta = task_or_404(task).metadata
    rows = rank_rows(db.latest_finished(meta.name, split), meta)
    secondary = [m for m in meta.metrics if m.name != meta.headline]
    groups = group_columns([r.groups for r in rows], meta)
    return render_template("task.html", meta=meta, rows=rows, split=split, splits=SPLITS,
                           secondary=secondary, groups=groups)


@bp.get("/evaluations/<int:evaluation_id>")
def evaluation_page(evaluation_id: int):
    ev = db.evaluation(evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation with id {evaluation_id}")
    meta = task_metadata_or_none(ev.task)
    metrics = metric_block(ev)
    groups = group_block(ev)
    metric_names = metric_columns([metrics], meta)
    instance_metric_names = metric_columns([i.metrics or {} for i in ev.instances], meta)
    return render_template(
        "evaluation.html", ev=ev, sub=ev.submission, meta=meta, metrics=metrics, groups=groups,
        metric_names=metric_names, metric_defs={m.name: m for m in meta.metrics} if meta else {},
        group_names=group_columns([groups], meta),
        instance_metric_names=instance_metric_names, finished=ev.status in FINISHED,
        command=reproduce_command(ev, ev.submission), record_format=RECORD_FORMAT)


@bp.get("/submissions/<path:name>")
def submission_page(name: str):
    sub = db.latest_submission(name)
    if sub is None:
        raise NotFound(f"no submission named {name!r}")
    rows = db.evaluations_of(name)
    return render_template("submission.html", sub=sub, meta=sub.meta if isinstance(sub.meta, dict) else {},
                           rows=rows, finished=FINISHED)
