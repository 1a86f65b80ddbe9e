"""The job queue, read-only: what is queued (and where in line), running, done or failed.

``/jobs`` is the page; ``/api/v1/jobs`` the same list as JSON (or ``?format=csv``). Both read the
jobs table the workers write (see :mod:`evaluator.queue`); the website never writes it.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request
from werkzeug.exceptions import BadRequest

from evaluator.store.jobs import JobStore, JobView
from evaluator.store.models import JobState

from .. import db
from ..api_models import JobInfo, Jobs
from ..csvout import FORMAT_PARAM, csv_response, wants_csv
from ..openapi import Param, operation

__all__ = ["MAX_LIMIT", "STATES", "api_bp", "bp", "jobs_payload"]

bp = Blueprint("jobs", __name__)
api_bp = Blueprint("jobs_api", __name__)

STATES = (JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CSV_FIELDS = ("id", "state", "position", "reason", "submission", "task", "split", "sandbox", "device", "queue",
               "attempts", "worker", "evaluation_id", "enqueued_at", "started_at", "finished_at")


def _query() -> tuple[list[str], str | None, int]:
    """``?state=`` (repeatable), ``?submission=``, ``?limit=``; 400 on anything else."""
    states = request.args.getlist("state")
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise BadRequest(f"unknown job state {unknown[0]!r}; expected one of {', '.join(STATES)}")
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return states, request.args.get("submission") or None, limit


def _views() -> tuple[list[JobView], dict[str, int], tuple]:
    states, submission, limit = _query()
    store = JobStore(db.get_engine())
    return store.list(states, submission, limit), store.counts(), (states, submission, limit)


def jobs_payload(views: list[JobView], counts: dict[str, int]) -> Jobs:
    return Jobs(counts={s: counts.get(s, 0) for s in STATES}, jobs=[JobInfo.model_validate(v.to_json()) for v in views])


@api_bp.get("/jobs")
@operation("Evaluation jobs of the queue, newest first", Jobs, csv=True, errors=(400,),
           params=[Param("state", {"type": "string", "enum": list(STATES)}, "only these states (repeatable)"),
                   Param("submission", {"type": "string"}, "only this submission's jobs"),
                   Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                         "how many jobs"),
                   FORMAT_PARAM],
           description="State (queued, running, done, failed with reason), queue position of queued jobs, "
                       "attempts, worker and the evaluation produced.")
def jobs_api() -> Response:
    views, counts, _ = _views()
    if wants_csv():
        return csv_response("jobs.csv", _CSV_FIELDS, ([v.to_json()[f] for f in _CSV_FIELDS] for v in views))
    return jsonify(jobs_payload(views, counts).model_dump(mode="json"))


@bp.get("/jobs")
def jobs_page() -> str:
    views, counts, (states, submission, limit) = _views()
    return render_template("jobs.html", views=views, counts={s: counts.get(s, 0) for s in STATES},
                           states=STATES, selected=states, submission=submission, limit=limit)
