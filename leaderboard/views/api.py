"""JSON API, versioned under ``/api/v1/`` (the same blueprint is also mounted at ``/api/`` so the
original routes keep working). Errors are JSON too: ``{"error", "message", "status"}`` (see
``create_app``). Every table endpoint also answers ``?format=csv``. The OpenAPI description is at
``/api/v1/openapi.json``.
"""
from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from werkzeug.exceptions import BadRequest, NotFound

from benchmark.metadata import TaskMetadata
from benchmark.stats import LEVEL, N_BOOT, SEED
from evaluator.results.ranking import RankedRow, headline_of, summary_of
from evaluator.store import FINISHED

from .. import db
from ..board import (
    OVERALL_RULE,
    Board,
    CompareError,
    best_floor,
    board_detectable_difference,
    board_intervals,
    board_plots,
    board_skill,
    compare,
    get_board,
    interval_json,
    overall_ranking,
)
from ..csvout import csv_response, wants_csv
from ..plots import PlotData, plot_rows, plot_summary
from . import (
    Page,
    group_columns,
    metric_columns,
    page_args,
    registered_tasks,
    reproduce_command,
    split_arg,
    task_metadata_or_none,
    task_or_404,
)

__all__ = [
    "MAX_CHOSEN_EVALUATIONS",
    "RANK_INTERVAL_METHOD",
    "bp",
    "json_safe",
    "leaderboard_csv",
    "leaderboard_payload",
    "load_comparison",
    "overall_payload",
    "plot_payload",
    "task_json",
]

MAX_CHOSEN_EVALUATIONS = 20   # ?evaluations= of a plot

bp = Blueprint("api", __name__)

RANK_INTERVAL_METHOD = {
    "method": "paired bootstrap over instance ids: each resample draws instances with replacement and "
              "scores every row on the same draw (over the drawn instances it has), rows are ranked "
              "jointly, and the interval is the central 95% of each row's rank",
    "resamples": N_BOOT, "seed": SEED, "level": LEVEL,
    "tied_with_previous": "the 95% paired-bootstrap interval of the headline difference to the row "
                          "above, over the instances both share, contains 0",
}


SKILL_METHOD = {
    "method": "(m − f) / (best − f) of the headline aggregate, m the method's and f the best floor's over the "
              "ranked instances both answered, best the value a perfect answer reaches; 95% paired bootstrap "
              "interval, resampled within groups",
    "resamples": N_BOOT, "seed": SEED, "level": LEVEL,
}


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf (not valid JSON) with None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _json(payload: Any) -> Response:
    return jsonify(json_safe(payload))


def task_json(meta: TaskMetadata) -> dict[str, Any]:
    return {
        "name": meta.name,
        "version": meta.version,
        "description": meta.description,
        "headline": meta.headline,
        "higher_is_better": meta.headline_metric.higher_is_better,
        "metrics": [{"name": m.name, "description": m.description, "higher_is_better": m.higher_is_better,
                     "aggregation": m.aggregation, "best": m.best, "worst": m.worst} for m in meta.metrics],
        "groups": list(meta.groups),
        "dataset": {"repo_id": meta.dataset.repo_id, "config": meta.dataset.config,
                    "revision": meta.dataset.revision},
        "plots": [p.model_dump() for p in meta.plots],
    }


# --- leaderboard ---------------------------------------------------------------------------------
def _row_json(row: RankedRow, meta: TaskMetadata, intervals: dict, skills: dict | None = None) -> dict[str, Any]:
    out = row.to_json(meta)
    out["rank_interval"] = interval_json(intervals.get(row.evaluation.id))
    if skills is not None:
        skill = skills.get(row.evaluation.id)
        out["skill"] = skill.to_json() if skill else None
    return out


def leaderboard_payload(board: Board, page: Page | None = None) -> dict[str, Any]:
    """The leaderboard as JSON; with ``page``, only that window of the current rows (and a
    ``page`` block with total and next/previous links). Stale sections are always whole."""
    meta = board.meta
    intervals = board_intervals(board)
    skills = board_skill(board)
    floor = best_floor(board)
    rows = page.slice(board.current) if page else board.current
    return json_safe({
        "task": meta.name, "task_version": meta.version, "split": board.split, "headline": meta.headline,
        "higher_is_better": meta.headline_metric.higher_is_better,
        "rank_intervals": RANK_INTERVAL_METHOD,
        "skill": {**SKILL_METHOD, "floor": floor.submission.name if floor else None,
                  "floor_evaluation_id": floor.evaluation.id if floor else None},
        "detectable_difference": board_detectable_difference(board),
        "unranked_groups": list(meta.unranked_groups),
        **({"page": page.links(len(board.current))} if page else {}),
        "rows": [_row_json(r, meta, intervals, skills) for r in rows],
        "floors": [_row_json(r, meta, {}) for r in board.floors],
        "in_sample": [_row_json(r, meta, {}, skills) for r in board.in_sample],
        "stale": [{"task_version": s.version,
                   "note": f"scored on task version {s.version}; not ranked with the current version "
                           f"{meta.version}",
                   "rows": [_row_json(r, meta, {}) for r in s.rows]} for s in board.stale],
    })


def leaderboard_csv(board: Board) -> Response:
    meta = board.meta
    intervals = board_intervals(board)
    groups = group_columns([r.groups for r in board.all_rows], meta)
    others = metric_columns([r.metrics for r in board.all_rows], meta)
    others = [m for m in others if m != meta.headline]
    skills = board_skill(board)
    header = (["section", "rank", "rank_low", "rank_high", "submission", "baseline", "floor", "evaluation_id",
               "task_version", meta.headline, "ci_low", "ci_high", "skill", "skill_ci_low", "skill_ci_high"]
              + others + [f"group:{g}" for g in groups]
              + ["n_failed", "n_instances", "runtime_s", "status", "finished_at"])

    def line(section: str, r: RankedRow) -> list[Any]:
        iv = intervals.get(r.evaluation.id) if section == "current" else None
        ev = r.evaluation
        sk = skills.get(ev.id)
        return ([section, r.rank, iv.low if iv else None, iv.high if iv else None, r.submission.name, r.baseline,
                 r.floor, ev.id, ev.task_version, r.headline, r.ci_low, r.ci_high,
                 sk.value if sk else None, sk.ci_low if sk else None, sk.ci_high if sk else None]
                + [r.metrics.get(m, {}).get("value") for m in others]
                + [r.groups.get(g, {}).get(meta.headline) for g in groups]
                + [ev.n_failed, ev.n_instances, ev.runtime_s, ev.status,
                   ev.finished_at.isoformat() if ev.finished_at else None])
    rows = [line("current", r) for r in board.current]
    rows += [line("floor", r) for r in board.floors]
    rows += [line("in-sample", r) for r in board.in_sample]
    rows += [line(f"stale (task v{s.version})", r) for s in board.stale for r in s.rows]
    return csv_response(f"{meta.name}-{board.split}-leaderboard.csv", header, rows)


# --- task plots -------------------------------------------------------------------------------
def _chosen_rows(board: Board) -> list[RankedRow]:
    """``?evaluations=1,2,3`` (evaluations on this task's leaderboard for the split, stale ones
    included), or the rows the task page plots."""
    raw = request.args.get("evaluations")
    if raw is None:
        return plot_rows(board.current)
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise BadRequest(f"?evaluations= must be comma-separated evaluation ids, got {raw!r}") from None
    if not ids or len(ids) > MAX_CHOSEN_EVALUATIONS:
        raise BadRequest(f"?evaluations= takes 1 to {MAX_CHOSEN_EVALUATIONS} evaluation ids, got {len(ids)}")
    by_id = {r.evaluation.id: r for r in board.all_rows}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise BadRequest(f"?evaluations=: {', '.join(map(str, unknown))} not on the {board.meta.name} "
                         f"{board.split} leaderboard (the newest finished evaluation of each submission)")
    return [by_id[i] for i in dict.fromkeys(ids)]


def plot_payload(board: Board, data: PlotData) -> dict[str, Any]:
    return {"task": board.meta.name, "task_version": board.meta.version, "split": board.split,
            "plot": data.spec.model_dump(), "summary": plot_summary(data), "n_points": data.n_points,
            "n_skipped": data.n_skipped, "series": [s.to_json() for s in data.series]}


# --- overall ----------------------------------------------------------------------------------
def overall_payload(split: str) -> dict[str, Any]:
    tasks = [t.metadata for t in registered_tasks()]
    boards = [get_board(meta, split) for meta in tasks]
    rows = overall_ranking(boards)
    return {"split": split, "tasks": [m.name for m in tasks], "rule": OVERALL_RULE,
            "rows": [r.to_json(len(tasks)) for r in rows]}


# --- compare ----------------------------------------------------------------------------------
def _int_arg(name: str) -> int:
    raw = request.args.get(name, "")
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"?{name}= must be an evaluation id (an integer), got {raw!r}") from None


def load_comparison():
    """The Comparison for ``?a=&b=``: 400 for bad ids or different tasks, 404 for unknown ids."""
    a_id, b_id = _int_arg("a"), _int_arg("b")
    a, b = db.evaluation(a_id), db.evaluation(b_id)
    if a is None or b is None:
        raise NotFound(f"no evaluation with id {a_id if a is None else b_id}")
    meta = task_metadata_or_none(a.task)
    names = metric_columns([i.metrics or {} for i in a.instances] + [i.metrics or {} for i in b.instances], meta)
    try:
        return compare(a, b, meta, names, lambda seen: group_columns(seen, meta))
    except CompareError as e:
        raise BadRequest(str(e)) from None


# --- routes -----------------------------------------------------------------------------------
@bp.get("/tasks")
def tasks():
    metas = [t.metadata for t in registered_tasks()]
    if wants_csv():
        return csv_response("tasks.csv", ["name", "version", "headline", "higher_is_better", "groups", "description"],
                            [[m.name, m.version, m.headline, m.headline_metric.higher_is_better,
                              " ".join(m.groups), m.description] for m in metas])
    return _json({"tasks": [task_json(m) for m in metas]})


@bp.get("/tasks/<task>")
def task(task: str):
    wants_csv()
    return _json(task_json(task_or_404(task).metadata))


@bp.get("/tasks/<task>/leaderboard")
def leaderboard(task: str):
    split = split_arg()
    csv = wants_csv()
    board = get_board(task_or_404(task).metadata, split)
    if csv:
        return leaderboard_csv(board)
    page = page_args()
    # the links in the body name this mount (/api or /api/v1) and the request's arguments
    key = ("api-leaderboard", page, request.blueprint, tuple(sorted(request.args.items())))
    body, link = board.memoize(key, lambda: _paged_body(leaderboard_payload(board, page)))
    return _paged_response(body, link)


def _paged_body(payload: dict[str, Any]) -> tuple[bytes, str | None]:
    return jsonify(payload).get_data(), Page.link_header(payload["page"])


def _paged_response(body: bytes, link: str | None) -> Response:
    resp = Response(body, mimetype="application/json")
    if link:
        resp.headers["Link"] = link
    return resp


def _paged_json(payload: dict[str, Any]) -> Response:
    return _paged_response(*_paged_body(json_safe(payload)))


@bp.get("/tasks/<task>/plots")
def task_plots(task: str):
    wants_csv()
    meta = task_or_404(task).metadata
    return _json({"task": meta.name, "plots": [{**p.model_dump(), "url": url_for(
        ".task_plot_data", task=meta.name, plot=p.name)} for p in meta.plots]})


@bp.get("/tasks/<task>/plots/<plot>")
def task_plot_data(task: str, plot: str):
    split = split_arg()
    csv = wants_csv()
    meta = task_or_404(task).metadata
    try:
        spec = meta.plot(plot)
    except KeyError:
        raise NotFound(f"task {meta.name} has no plot {plot!r}; its plots: "
                       f"{', '.join(p.name for p in meta.plots) or 'none'}") from None
    board = get_board(meta, split)

    def render() -> Response:
        data = next(d for d in board_plots(board, _chosen_rows(board)) if d.spec.name == spec.name)
        if csv:
            return csv_response(f"{meta.name}-{split}-{spec.name}.csv",
                                ["submission", "evaluation_id", "baseline", "rank", "instance_id", "group",
                                 spec.x, spec.y],
                                [[s.submission, s.evaluation_id, s.baseline, s.rank, p.instance_id, p.group, p.x,
                                  p.y] for s in data.series for p in s.points])
        return _json(plot_payload(board, data))
    resp = board.memoize(("api-plot", spec.name, request.args.get("evaluations"), csv), render)
    return Response(resp.get_data(), status=resp.status_code, headers=dict(resp.headers))


def _iso(dt) -> str | None:
    return dt.isoformat() if dt else None


@bp.get("/evaluations/<int:evaluation_id>")
def evaluation(evaluation_id: int):
    csv = wants_csv()
    ev = db.evaluation(evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation with id {evaluation_id}")
    sub = ev.submission
    meta = task_metadata_or_none(ev.task)
    if csv:
        names = metric_columns([i.metrics or {} for i in ev.instances], meta)
        return csv_response(f"evaluation-{ev.id}-instances.csv",
                            ["instance_id", "group", "status"] + names + ["runtime_s", "error"],
                            [[i.instance_id, i.group, i.status] + [(i.metrics or {}).get(n) for n in names]
                             + [i.runtime_s, i.error] for i in ev.instances])
    page = page_args()
    value, lo, hi = headline_of(ev, meta) if meta else (ev.headline, ev.headline_ci_low, ev.headline_ci_high)
    summary = summary_of(ev)
    return _paged_json({
        "id": ev.id,
        "submission": sub.name,
        "baseline": bool((sub.meta or {}).get("baseline", False)) if isinstance(sub.meta, dict) else False,
        "task": ev.task, "task_version": ev.task_version, "split": ev.split,
        "current_task_version": meta.version if meta else None,
        "stale": bool(meta and ev.task_version != meta.version),
        "status": ev.status, "note": ev.note,
        "headline_metric": meta.headline if meta else ev.headline_metric,
        "headline": value, "ci_low": lo, "ci_high": hi,
        "metrics": summary.metric_block(), "groups": summary.group_block(), "breakdowns": summary.breakdown_blocks(),
        "n_instances": ev.n_instances, "n_failed": ev.n_failed, "runtime_s": ev.runtime_s,
        "provenance": {
            "code_sha256": sub.code_sha256, "git_commit": sub.git_commit,
            "dataset_revision": ev.dataset_revision, "evaluator_version": ev.evaluator_version,
            "sandbox": ev.sandbox, "sandbox_info": ev.sandbox_info or {}, "device": ev.device,
            "hardware": ev.hardware or {},
            "library_versions": ev.library_versions or {}, "started_at": _iso(ev.started_at),
            "finished_at": _iso(ev.finished_at), "record_format": ev.record_format,
        },
        "reproduce": reproduce_command(ev, sub),
        "page": page.links(len(ev.instances)),
        "instances": [{"instance_id": i.instance_id, "group": i.group, "status": i.status,
                       "metrics": i.metrics or {}, "details": i.details or {}, "runtime_s": i.runtime_s,
                       "error": i.error} for i in page.slice(ev.instances)],
    })


@bp.get("/submissions/<path:name>")
def submission(name: str):
    csv = wants_csv()
    sub = db.latest_submission(name)
    if sub is None:
        raise NotFound(f"no submission named {name!r}")
    rows = db.evaluations_of(name)
    if csv:
        return csv_response(f"submission-{name}-evaluations.csv",
                            ["evaluation_id", "task", "task_version", "split", "status", "finished",
                             "headline_metric", "headline", "ci_low", "ci_high", "n_failed", "n_instances",
                             "code_sha256", "finished_at"],
                            [[r.evaluation.id, r.evaluation.task, r.evaluation.task_version, r.evaluation.split,
                              r.evaluation.status, r.evaluation.status in FINISHED, r.evaluation.headline_metric,
                              r.evaluation.headline, r.evaluation.headline_ci_low, r.evaluation.headline_ci_high,
                              r.evaluation.n_failed, r.evaluation.n_instances, r.submission.code_sha256,
                              _iso(r.evaluation.finished_at)] for r in rows])
    meta = sub.meta if isinstance(sub.meta, dict) else {}
    page = page_args()
    return _paged_json({
        "name": sub.name, "metadata": meta, "baseline": bool(meta.get("baseline", False)),
        "code_sha256": sub.code_sha256, "git_commit": sub.git_commit,
        "page": page.links(len(rows)),
        "evaluations": [{"evaluation_id": r.evaluation.id, "task": r.evaluation.task,
                         "task_version": r.evaluation.task_version, "split": r.evaluation.split,
                         "status": r.evaluation.status, "finished": r.evaluation.status in FINISHED,
                         "headline_metric": r.evaluation.headline_metric, "headline": r.evaluation.headline,
                         "ci_low": r.evaluation.headline_ci_low, "ci_high": r.evaluation.headline_ci_high,
                         "n_failed": r.evaluation.n_failed, "n_instances": r.evaluation.n_instances,
                         "code_sha256": r.submission.code_sha256, "finished_at": _iso(r.evaluation.finished_at)}
                        for r in page.slice(rows)],
    })


@bp.get("/compare")
def compare_api():
    csv = wants_csv()
    c = load_comparison()
    if csv:
        table = request.args.get("table", "instances")
        if table == "metrics":
            return csv_response(f"compare-{c.a.id}-{c.b.id}-metrics.csv",
                                ["metric", "n", "aggregation", "value_a", "value_b", "diff", "ci_low", "ci_high", "verdict"],
                                [[m, d.n, d.aggregation, d.value_a, d.value_b, d.diff, d.ci_low, d.ci_high, c.verdict(m)]
                                 for m, d in c.metrics.items()])
        if table == "groups":
            return csv_response(f"compare-{c.a.id}-{c.b.id}-groups.csv",
                                ["group", "metric", "n", "value_a", "value_b", "diff"],
                                [[g, m, d.n, d.value_a, d.value_b, d.diff] for g, per in c.groups.items()
                                 for m, d in per.items()])
        if table != "instances":
            raise BadRequest(f"unknown table {table!r}; expected metrics, groups or instances")
        return csv_response(f"compare-{c.a.id}-{c.b.id}-instances.csv",
                            ["instance_id", "group", "status_a", "status_b", "a", "b", "diff"],
                            [[i["instance_id"], i["group"], i["status_a"], i["status_b"], i["a"], i["b"], i["diff"]]
                             for i in c.instances])
    return _json(c.to_json())


@bp.get("/overall")
def overall():
    split = split_arg()
    csv = wants_csv()
    page = None if csv else page_args()
    payload = overall_payload(split)
    if csv:
        tasks = payload["tasks"]
        return csv_response(f"overall-{split}.csv",
                            ["position", "submission", "baseline", "n_tasks", "mean_skill", "mean_rank"]
                            + [f"skill:{t}" for t in tasks] + [f"rank:{t}" for t in tasks],
                            [[r["position"], r["submission"], r["baseline"], r["n_tasks"], r["mean_skill"],
                              r["mean_rank"]] + [r["skills"].get(t) for t in tasks]
                             + [r["ranks"].get(t) for t in tasks] for r in payload["rows"]])
    assert page is not None   # only a CSV request has no page
    return _paged_json({**payload, "page": page.links(len(payload["rows"])), "rows": page.slice(payload["rows"])})


@bp.get("/openapi.json")
def openapi():
    from ..openapi import openapi_document
    return jsonify(openapi_document(request.script_root + request.path.rsplit("/", 1)[0]))
