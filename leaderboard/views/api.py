"""JSON API, versioned under ``/api/v1/`` (the same blueprint is also mounted at ``/api/`` so the
original routes keep working). Errors are JSON too: ``{"error", "message", "status"}`` (see
``create_app``). Every table endpoint also answers ``?format=csv``. Each JSON answer is a model of
:mod:`leaderboard.api_models`, and the OpenAPI document at ``/api/v1/openapi.json`` is generated
from those models and the routes' :func:`~leaderboard.openapi.operation` declarations.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from pydantic import BaseModel
from werkzeug.exceptions import BadRequest, NotFound

from benchmark.metadata import TaskMetadata
from benchmark.stats import LEVEL, N_BOOT, SEED
from evaluator.results.board import PlottedRow, StoredBoard, dump_json, plotted
from evaluator.results.ranking import RankedRow, headline_of, summary_of
from evaluator.results.summary import EvaluationSummary
from evaluator.store import FINISHED, Evaluation, Submission

from .. import api_models as models
from .. import db
from ..board import (
    OVERALL_RULE,
    Board,
    CompareError,
    OverallRow,
    board_intervals,
    board_layout,
    board_plots,
    board_skill,
    compare,
    get_board,
    board_view,
    header_plotted,
    overall_ranking,
    shown,
)
from ..csvout import FORMAT_PARAM, csv_response, wants_csv
from ..openapi import Param, openapi_document, operation
from ..plots import PlotData, plot_summary
from . import (
    PAGING_PARAMS,
    SPLIT_PARAM,
    Page,
    group_columns,
    instances_withheld,
    metric_columns,
    page_args,
    registered_tasks,
    refuse_withheld,
    reproduce_command,
    split_arg,
    task_metadata_or_none,
    task_or_404,
)

__all__ = [
    "MAX_CHOSEN_EVALUATIONS",
    "RANK_INTERVAL_METHOD",
    "bp",
    "leaderboard_csv",
    "leaderboard_body",
    "load_comparison",
    "plot_payload",
    "task_info",
]

MAX_CHOSEN_EVALUATIONS = 20   # ?evaluations= of a plot

bp = Blueprint("api", __name__)

RANK_INTERVAL_METHOD = models.RankIntervalMethod(
    method="paired bootstrap over instance ids: each resample draws instances with replacement and "
           "scores every row on the same draw (over the drawn instances it has), rows are ranked "
           "jointly, and the interval is the central 95% of each row's rank",
    resamples=N_BOOT, seed=SEED, level=LEVEL,
    tied_with_previous="the 95% paired-bootstrap interval of the headline difference to the row "
                       "above, over the instances both share, contains 0",
)

_SKILL_METHOD = ("(m − f) / (best − f) of the headline aggregate, m the method's and f the best floor's over the "
                 "ranked instances both answered, best the value a perfect answer reaches; 95% paired bootstrap "
                 "interval, resampled within groups")


def _json(body: BaseModel) -> Response:
    return jsonify(body.model_dump(mode="json"))


def _iso(dt) -> str | None:
    return dt.isoformat() if dt else None


def task_info(meta: TaskMetadata) -> models.TaskInfo:
    return models.TaskInfo(
        name=meta.name, version=meta.version, description=meta.description, headline=meta.headline,
        higher_is_better=meta.headline_metric.higher_is_better,
        metrics=[models.TaskMetric(name=x.name, description=x.description, higher_is_better=x.higher_is_better,
                                   aggregation=x.aggregation, best=x.best, worst=x.worst) for x in meta.metrics],
        groups=list(meta.groups),
        dataset=models.TaskDataset(repo_id=meta.dataset.repo_id, config=meta.dataset.config,
                                   revision=meta.dataset.revision),
        plots=[models.PlotDeclaration.of(p) for p in meta.plots])


# --- leaderboard ---------------------------------------------------------------------------------
def _array(texts: list[str]) -> str:
    return "[" + ",".join(texts) + "]"


def leaderboard_body(meta: TaskMetadata, split: str, view: StoredBoard, page: Page) -> tuple[bytes, str | None]:
    """The leaderboard's JSON (a :class:`models.Leaderboard`): ``page`` is the window of the current
    rows it holds (with a ``page`` block of the total and next/previous links); the other sections
    are always whole. The rows are spliced in as stored (or built the same way), never parsed."""
    header = view.header
    links = page.links(header.n_current)
    skill = models.SkillMethod(method=_SKILL_METHOD, resamples=N_BOOT, seed=SEED, level=LEVEL, floor=header.floor,
                               floor_evaluation_id=header.floor_evaluation_id)
    note = "scored on task version {v}; not ranked with the current version " + str(meta.version)
    parts = {
        "task": dump_json(meta.name), "task_version": dump_json(meta.version), "split": dump_json(split),
        "headline": dump_json(meta.headline), "higher_is_better": dump_json(meta.headline_metric.higher_is_better),
        "rank_intervals": dump_json(RANK_INTERVAL_METHOD.model_dump(mode="json")),
        "skill": dump_json(skill.model_dump(mode="json")),
        "detectable_difference": dump_json(header.detectable_difference),
        "unranked_groups": dump_json(list(meta.unranked_groups)),
        "page": dump_json(links.model_dump(mode="json")),
        "rows": _array(view.current), "floors": _array(view.floors), "in_sample": _array(view.in_sample),
        # a StaleSection's keys in sorted order, as every object here
        "stale": _array([f'{{"note":{dump_json(note.format(v=version))},"rows":{_array(rows)},"task_version":{version}}}'
                         for version, rows in view.stale]),
    }
    body = "{" + ",".join(f"{dump_json(k)}:{v}" for k, v in sorted(parts.items())) + "}\n"
    return body.encode(), Page.link_header(links)


def leaderboard_csv(board: Board) -> Response:
    meta = board.meta
    intervals = board_intervals(board)
    groups = board_layout(board).group_columns
    others = metric_columns([r.metrics for r in shown(board.all_rows)], meta)
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
def _chosen_rows(board: Board) -> list[PlottedRow]:
    """``?evaluations=1,2,3``: evaluations on this task's leaderboard for the split, stale ones
    included."""
    raw = request.args.get("evaluations") or ""
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
    return plotted([by_id[i] for i in dict.fromkeys(ids)])


def plot_payload(meta: TaskMetadata, split: str, data: PlotData) -> models.PlotData:
    return models.PlotData(task=meta.name, task_version=meta.version, split=split,
                           plot=models.PlotDeclaration.of(data.spec), summary=plot_summary(data),
                           n_points=data.n_points, n_skipped=data.n_skipped,
                           series=[models.PlotSeries.model_validate(s.to_json()) for s in data.series])


# --- overall ----------------------------------------------------------------------------------
def _overall(split: str) -> tuple[list[str], list[OverallRow]]:
    tasks = [t.metadata for t in registered_tasks()]
    return [t.name for t in tasks], overall_ranking([(meta.name, board_view(meta, split, limit=0, with_overall=True).overall
                                                      or []) for meta in tasks])


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
        c = compare(a, b, meta, names, lambda seen: group_columns(seen, meta))
    except CompareError as e:
        raise BadRequest(str(e)) from None
    if instances_withheld(a.split) or instances_withheld(b.split):
        c.instances, c.instances_withheld = [], True
    return c


# --- routes -----------------------------------------------------------------------------------
_TASK = {"task": "a registered task's name"}


@bp.get("/tasks")
@operation("Every registered task with its metrics", models.TaskList, params=[FORMAT_PARAM], csv=True, errors=(400,))
def tasks():
    metas = [t.metadata for t in registered_tasks()]
    if wants_csv():
        return csv_response("tasks.csv", ["name", "version", "headline", "higher_is_better", "groups", "description"],
                            [[m.name, m.version, m.headline, m.headline_metric.higher_is_better,
                              " ".join(m.groups), m.description] for m in metas])
    return _json(models.TaskList(tasks=[task_info(meta) for meta in metas]))


@bp.get("/tasks/<task>")
@operation("One task's metadata", models.TaskInfo, path_params=_TASK)
def task(task: str):
    wants_csv()
    return _json(task_info(task_or_404(task).metadata))


@bp.get("/tasks/<task>/leaderboard")
@operation("A task's leaderboard", models.Leaderboard, params=[SPLIT_PARAM, FORMAT_PARAM, *PAGING_PARAMS], csv=True,
           path_params=_TASK,
           description="Current-version rows ranked with rank intervals, older-version rows in separate stale "
                       "sections (never ranked). JSON pages through the current rows (?limit=&offset=; the other "
                       "sections are always whole); the Link header carries the next/previous URLs.")
def leaderboard(task: str):
    split = split_arg()
    csv = wants_csv()
    meta = task_or_404(task).metadata
    if csv:
        return leaderboard_csv(get_board(meta, split))
    page = page_args()
    # the body names this mount (/api or /api/v1) and the request's arguments in its links
    key = ("api-leaderboard", meta.name, meta.version, split, db.board_fingerprint(meta.name, split), page,
           request.blueprint, tuple(sorted(request.args.items())))
    return _paged_response(*db.cache().get_or_compute(
        key, lambda: leaderboard_body(meta, split, board_view(meta, split, page.offset, page.limit), page)))


def _paged_body(body: models.Leaderboard | models.EvaluationDetail | models.SubmissionDetail | models.Overall) -> tuple[bytes, str | None]:
    return _json(body).get_data(), Page.link_header(body.page)


def _paged_response(body: bytes, link: str | None) -> Response:
    resp = Response(body, mimetype="application/json")
    if link:
        resp.headers["Link"] = link
    return resp


def _paged_json(body: models.EvaluationDetail | models.SubmissionDetail | models.Overall) -> Response:
    return _paged_response(*_paged_body(body))


@bp.get("/tasks/<task>/plots")
@operation("The plots a task declares (scatter plots of per-instance details or metrics)", models.PlotLinks,
           path_params=_TASK)
def task_plots(task: str):
    wants_csv()
    meta = task_or_404(task).metadata
    return _json(models.PlotLinks(task=meta.name, plots=[
        models.PlotLink.of(p, url=url_for(".task_plot_data", task=meta.name, plot=p.name))
        for p in meta.plots]))


@bp.get("/tasks/<task>/plots/<plot>")
@operation("The points of one declared plot", models.PlotData, csv=True,
           params=[SPLIT_PARAM, FORMAT_PARAM, Param(
               "evaluations", {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
               f"comma-separated evaluation ids from this task's leaderboard (at most {MAX_CHOSEN_EVALUATIONS})")],
           path_params={**_TASK, "plot": "a plot the task declares"},
           description="One series per submission (the top five current-version submissions and the highlighted "
                       "baselines, as on the task page, unless ?evaluations= names others), one point per instance "
                       "result that has both values; the rest are counted as skipped. CSV: one line per point.")
def task_plot_data(task: str, plot: str):
    split = split_arg()
    csv = wants_csv()
    meta = task_or_404(task).metadata
    refuse_withheld(split)
    try:
        spec = meta.plot(plot)
    except KeyError:
        raise NotFound(f"task {meta.name} has no plot {plot!r}; its plots: "
                       f"{', '.join(p.name for p in meta.plots) or 'none'}") from None
    # the plotted rows: named by ?evaluations= (any row of the board, which is built for it), else the
    # board's own (its stored header: no board is built)
    def render() -> Response:
        rows = _chosen_rows(get_board(meta, split)) if "evaluations" in request.args else header_plotted(
            board_view(meta, split, limit=0))
        data = next(d for d in board_plots(meta, rows) if d.spec.name == spec.name)
        if csv:
            return csv_response(f"{meta.name}-{split}-{spec.name}.csv",
                                ["submission", "evaluation_id", "baseline", "rank", "instance_id", "group",
                                 spec.x, spec.y],
                                [[s.submission, s.evaluation_id, s.baseline, s.rank, p.instance_id, p.group, p.x,
                                  p.y] for s in data.series for p in s.points])
        return _json(plot_payload(meta, split, data))
    key = ("api-plot", meta.name, meta.version, split, db.board_fingerprint(meta.name, split), spec.name,
           request.args.get("evaluations"), csv)
    resp = db.cache().get_or_compute(key, render)
    return Response(resp.get_data(), status=resp.status_code, headers=dict(resp.headers))


def _submission_flags(sub: Submission) -> RankedRow:
    """A row carrying only ``sub``: RankedRow.baseline is the one reading of submission.yaml's flags,
    and a submission's own page has no ranked row to ask."""
    return RankedRow(None, Evaluation(), sub, None, None, None, EvaluationSummary)


@bp.get("/evaluations/<int:evaluation_id>")
@operation("One evaluation with provenance and its instance results", models.EvaluationDetail, csv=True,
           params=[FORMAT_PARAM, *PAGING_PARAMS], description="JSON: the instances paged with ?limit=&offset=; "
           "CSV: the whole instance table.")
def evaluation(evaluation_id: int):
    csv = wants_csv()
    ev = db.evaluation(evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation with id {evaluation_id}")
    sub = ev.submission
    meta = task_metadata_or_none(ev.task)
    withheld = instances_withheld(ev.split)
    instances = [] if withheld else ev.instances
    if csv:
        refuse_withheld(ev.split)
        names = metric_columns([i.metrics or {} for i in ev.instances], meta)
        return csv_response(f"evaluation-{ev.id}-instances.csv",
                            ["instance_id", "group", "status"] + names + ["runtime_s", "error"],
                            [[i.instance_id, i.group, i.status] + [(i.metrics or {}).get(n) for n in names]
                             + [i.runtime_s, i.error] for i in ev.instances])
    page = page_args()
    value, lo, hi = headline_of(ev, meta) if meta else (ev.headline, ev.headline_ci_low, ev.headline_ci_high)
    summary = summary_of(ev)
    row = RankedRow(None, ev, sub, value, lo, hi, lambda: summary)
    return _paged_json(models.EvaluationDetail(
        id=ev.id, submission=sub.name, baseline=row.baseline,
        task=ev.task, task_version=ev.task_version, split=ev.split,
        current_task_version=meta.version if meta else None,
        stale=bool(meta and ev.task_version != meta.version),
        status=ev.status, note=ev.note,
        headline_metric=meta.headline if meta else ev.headline_metric,
        headline=row.headline, ci_low=row.ci_low, ci_high=row.ci_high,
        metrics={k: models.MetricValue.model_validate(v) for k, v in row.metrics.items()}, groups=row.groups, breakdowns=row.summary.breakdown_blocks(),
        n_instances=ev.n_instances, n_failed=ev.n_failed, runtime_s=ev.runtime_s,
        provenance=models.Provenance(
            code_sha256=sub.code_sha256, git_commit=sub.git_commit,
            dataset_revision=ev.dataset_revision, evaluator_version=ev.evaluator_version,
            sandbox=ev.sandbox, sandbox_info=ev.sandbox_info or {}, device=ev.device,
            hardware=ev.hardware or {}, library_versions=ev.library_versions or {},
            started_at=_iso(ev.started_at), finished_at=_iso(ev.finished_at), record_format=ev.record_format),
        reproduce=reproduce_command(ev, sub), instances_withheld=withheld,
        page=page.links(len(instances)),
        instances=[models.InstanceResult(instance_id=i.instance_id, group=i.group, status=i.status,
                                         metrics=i.metrics or {}, details=i.details or {}, runtime_s=i.runtime_s,
                                         error=i.error) for i in page.slice(instances)]))


@bp.get("/submissions/<path:name>")
@operation("A submission's metadata (newest code version) and its evaluations", models.SubmissionDetail, csv=True,
           params=[FORMAT_PARAM, *PAGING_PARAMS], path_params={"name": "the submission's name"},
           description="JSON: the evaluations paged with ?limit=&offset=; CSV: all of them.")
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
    page = page_args()
    return _paged_json(models.SubmissionDetail(
        name=sub.name, metadata=sub.meta if isinstance(sub.meta, dict) else {},
        baseline=_submission_flags(sub).baseline, code_sha256=sub.code_sha256, git_commit=sub.git_commit,
        page=page.links(len(rows)),
        evaluations=[models.SubmissionEvaluation(
            evaluation_id=ev.id, task=ev.task, task_version=ev.task_version, split=ev.split, status=ev.status,
            finished=ev.status in FINISHED, headline_metric=ev.headline_metric, headline=ev.headline,
            ci_low=ev.headline_ci_low, ci_high=ev.headline_ci_high, n_failed=ev.n_failed,
            n_instances=ev.n_instances, code_sha256=r.submission.code_sha256, finished_at=_iso(ev.finished_at))
            for r in page.slice(rows) for ev in [r.evaluation]]))


@bp.get("/compare")
@operation("Two evaluations of the same task compared", models.Comparison, csv=True,
           params=[Param("a", {"type": "integer"}, "evaluation id of A", required=True),
                   Param("b", {"type": "integer"}, "evaluation id of B (same task)", required=True), FORMAT_PARAM,
                   Param("table", {"type": "string", "enum": ["instances", "metrics", "groups"],
                                   "default": "instances"}, "which table for format=csv")],
           description="Per-metric mean paired differences (A − B) over the shared instances with 95% "
                       "paired-bootstrap intervals, per-group differences and per-instance values.")
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
        if c.instances_withheld:
            refuse_withheld(c.a.split if instances_withheld(c.a.split) else c.b.split)
        return csv_response(f"compare-{c.a.id}-{c.b.id}-instances.csv",
                            ["instance_id", "group", "status_a", "status_b", "a", "b", "diff"],
                            [[i["instance_id"], i["group"], i["status_a"], i["status_b"], i["a"], i["b"], i["diff"]]
                             for i in c.instances])
    return _json(models.Comparison.model_validate(c.to_json()))


@bp.get("/overall")
@operation("Overall ranking across tasks", models.Overall, csv=True, params=[SPLIT_PARAM, FORMAT_PARAM, *PAGING_PARAMS],
           errors=(400,), description="By mean skill over the tasks each method entered (the rule is in the "
                                      "answer); JSON: paged.")
def overall():
    split = split_arg()
    csv = wants_csv()
    page = None if csv else page_args()
    tasks, rows = _overall(split)
    if csv:
        return csv_response(f"overall-{split}.csv",
                            ["position", "submission", "baseline", "n_tasks", "mean_skill", "mean_rank"]
                            + [f"skill:{t}" for t in tasks] + [f"rank:{t}" for t in tasks],
                            [[r.position, r.name, r.baseline, r.n_tasks, r.mean_skill, r.mean_rank]
                             + [r.skills.get(t) for t in tasks] + [r.ranks.get(t) for t in tasks] for r in rows])
    assert page is not None   # only a CSV request has no page
    return _paged_json(models.Overall(
        split=split, tasks=tasks, rule=OVERALL_RULE,
        rows=[models.OverallRow.model_validate(r.to_json(len(tasks))) for r in page.slice(rows)],
        page=page.links(len(rows))))


@bp.get("/openapi.json")
@operation("This document (OpenAPI 3.1)", None, errors=())
def openapi():
    return jsonify(openapi_document(current_app, server_url=request.script_root + request.path.rsplit("/", 1)[0]))
