"""Server-rendered HTML pages (no JavaScript needed; static/table.js only adds client-side sorting
and filtering when it is on)."""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import BadRequest, NotFound

from benchmark.registry import UnknownNameError
from benchmark.task import Task, get_task
from evaluator.results.ranking import summary_of
from evaluator.results.summary import RECORD_FORMAT
from evaluator.store import FINISHED

from .. import db
from ..board import (
    OVERALL_RULE,
    board_layout,
    board_plots,
    ShownRow,
    ShownStale,
    board_view,
    default_order,
    header_plotted,
    get_board,
    overall_ranking,
    shown,
    sort_keys,
    sorted_filtered,
)
from ..plots import MAX_SERIES, TOP_PLOTTED, chart_title, group_chart, plot_summary, render_chart, scatter_chart
from . import (
    SPLITS,
    WITHHELD,
    group_columns,
    instances_withheld,
    metric_columns,
    registered_tasks,
    reproduce_command,
    split_arg,
    task_metadata_or_none,
    task_or_404,
)
from .api import RANK_INTERVAL_METHOD, leaderboard_csv, load_comparison

__all__ = ["OVERALL_SHOWN", "PAGE_SIZE", "bp"]

bp = Blueprint("pages", __name__)

PAGE_SIZE = 100        # rows of a task table per page (all rows with ?all=1)
OVERALL_SHOWN = 100    # rows of the overall ranking on the overview (all with ?all=1)


@bp.get("/")
def index():
    split = split_arg()
    show_all = request.args.get("all") == "1"
    metas = [task.metadata for task in registered_tasks()]
    views = [board_view(meta, split, limit=0, with_overall=True) for meta in metas]
    key = ("index", split, show_all, tuple((m.name, m.version, db.board_fingerprint(m.name, split)) for m in metas))

    def render() -> str:
        cards = [{"meta": meta, "n_submissions": view.header.n_current, "n_stale": view.header.n_stale,
                  "leader": view.header.leader} for meta, view in zip(metas, views)]
        overall = overall_ranking([(meta.name, view.overall or []) for meta, view in zip(metas, views)])
        return render_template("index.html", cards=cards, split=split, splits=SPLITS, overall=overall,
                               overall_shown=overall if show_all else overall[:OVERALL_SHOWN],
                               tasks=metas, rule=OVERALL_RULE, show_all=show_all)
    return db.cache().get_or_compute(key, render)


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    try:
        page = int(raw)
    except ValueError:
        raise BadRequest(f"?page= must be a positive integer, got {raw!r}") from None
    if page < 1:
        raise BadRequest(f"?page= must be a positive integer, got {raw!r}")
    return page


@bp.get("/tasks/<task>")
def task_page(task: str):
    split = split_arg()
    meta = task_or_404(task).metadata
    sort = request.args.get("sort", "rank")
    order = request.args.get("order") or default_order(sort, meta)
    q = request.args.get("q", "").strip()[:200]
    page = _page_arg()
    show_all = request.args.get("all") == "1"
    # In board order a page is a slice of the stored rows; sorted or filtered, every row is read.
    in_board_order = sort == "rank" and order == "asc" and not q
    if in_board_order:
        view = board_view(meta, split, 0 if show_all else (page - 1) * PAGE_SIZE, None if show_all else PAGE_SIZE)
    else:
        view = board_view(meta, split)
    header = view.header
    groups = header.group_columns
    keys = sort_keys(meta, groups)
    if sort not in keys:
        raise BadRequest(f"unknown sort column {sort!r}; expected one of {', '.join(keys)}")
    if order not in ("asc", "desc"):
        raise BadRequest(f"?order= must be asc or desc, got {order!r}")

    def render() -> str:
        if in_board_order:
            rows = [ShownRow.of(t) for t in view.current]
            n_rows = header.n_current
            page_rows = rows
        else:
            rows = sorted_filtered([ShownRow.of(t) for t in view.current], meta, sort, order, q)
            n_rows = len(rows)
            page_rows = rows if show_all else rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        n_pages = 1 if show_all else max(1, -(-n_rows // PAGE_SIZE))
        # the first rows (the leader, the group chart, the compare form) are this page's on page 1
        top_view = view if in_board_order and view.offset == 0 and (show_all or PAGE_SIZE >= _TOP) else \
            board_view(meta, split, 0, _TOP)
        top = [ShownRow.of(t) for t in top_view.current[:_TOP]]
        ranked = [r for r in top if r.rank is not None]
        floors = [ShownRow.of(t) for t in view.floors]
        in_sample = [ShownRow.of(t) for t in view.in_sample]
        stale = [ShownStale(version, [ShownRow.of(t) for t in texts]) for version, texts in view.stale]
        every = page_rows + in_sample
        withheld = instances_withheld(split)
        task_plots = [] if withheld else [
            {"data": data, "svg": render_chart(scatter_chart(data)), "summary": plot_summary(data)}
            for data in board_plots(meta, header_plotted(view))]
        return render_template(
            "task.html", meta=meta, rows=page_rows, n_rows=n_rows, n_total=header.n_current,
            floors=floors, in_sample=in_sample, stale=stale, leader=ranked[0] if top and top[0].rank is not None
            else None,
            split=split, splits=SPLITS, secondary=[m for m in meta.metrics if m.name != meta.headline], groups=groups,
            intervals={r.evaluation.id: r.interval for r in page_rows if r.interval is not None},
            sort=sort, order=order, q=q, page=page, n_pages=n_pages, show_all=show_all,
            complete=(len(page_rows) == header.n_current), default_order=lambda k: default_order(k, meta),
            compare_choices=ranked, chart=render_chart(group_chart(ranked, groups, meta)),
            chart_title=chart_title(meta), method=RANK_INTERVAL_METHOD, card_html=card_section_html(meta.name),
            task_plots=task_plots, plots_withheld=withheld and bool(meta.plots), withheld_note=WITHHELD.format(split=split),
            top_plotted=TOP_PLOTTED, floor_name=header.floor,
            skills={r.evaluation.id: r.skill for r in every if r.skill is not None},
            detectable=header.detectable_difference, n_ranked_instances=header.n_ranked_instances)
    key = ("page", meta.name, meta.version, split, db.board_fingerprint(meta.name, split), sort, order, q, page,
           show_all)
    return db.cache().get_or_compute(key, render)


_TOP = 100    # the rows the compare form offers (and the leader and the group chart read)


@bp.get("/tasks/<task>/leaderboard.csv")
def task_csv(task: str):
    split = split_arg()
    return leaderboard_csv(get_board(task_or_404(task).metadata, split))


@bp.get("/tasks/<task>/plot.svg")
def task_plot(task: str):
    split = split_arg()
    meta = task_or_404(task).metadata
    board = get_board(meta, split)
    ranked = [r for r in board.current if r.rank is not None]
    chart = group_chart(shown(ranked[:MAX_SERIES]), board_layout(board).group_columns, meta)
    if chart is None:
        raise NotFound(f"nothing to plot for {meta.name} on the {split} split yet")
    return Response(str(render_chart(chart)), mimetype="image/svg+xml")


@bp.get("/evaluations/<int:evaluation_id>")
def evaluation_page(evaluation_id: int):
    ev = db.evaluation(evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation with id {evaluation_id}")
    meta = task_metadata_or_none(ev.task)
    summary = summary_of(ev)
    metrics, groups, breakdowns = summary.metric_block(), summary.group_block(), summary.breakdown_blocks()
    metric_names = metric_columns([metrics], meta)
    withheld = instances_withheld(ev.split)
    instances = [] if withheld else ev.instances
    instance_metric_names = metric_columns([i.metrics or {} for i in instances], meta)
    return render_template(
        "evaluation.html", ev=ev, sub=ev.submission, meta=meta, metrics=metrics, groups=groups,
        metric_names=metric_names, metric_defs={m.name: m for m in meta.metrics} if meta else {},
        group_names=group_columns([groups], meta), breakdowns=breakdowns,
        breakdown_defs={b.name: b for b in meta.breakdowns} if meta else {},
        instance_metric_names=instance_metric_names, finished=ev.status in FINISHED,
        command=reproduce_command(ev, ev.submission), record_format=RECORD_FORMAT, instances=instances,
        withheld_note=WITHHELD.format(split=ev.split) if withheld else None,
        newer_format=summary.newer_format)


@bp.get("/submissions/<path:name>")
def submission_page(name: str):
    sub = db.latest_submission(name)
    if sub is None:
        raise NotFound(f"no submission named {name!r}")
    rows = db.evaluations_of(name)
    return render_template("submission.html", sub=sub, meta=sub.meta if isinstance(sub.meta, dict) else {},
                           rows=rows, finished=FINISHED)


@bp.get("/compare")
def compare_page():
    if not request.args.get("a") or not request.args.get("b"):
        raise BadRequest("choose two evaluations to compare: /compare?a=<evaluation id>&b=<evaluation id> "
                         "(the form on each task page fills these in)")
    c = load_comparison()
    return render_template("compare.html", c=c, meta=c.meta, headline=c.meta.headline if c.meta else
                           c.a.headline_metric, metric_defs={m.name: m for m in c.meta.metrics} if c.meta else {})


def submissions_readme() -> Path:
    configured = current_app.config.get("SUBMISSIONS_README")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "submissions" / "README.md"


@bp.get("/submit")
def submit_page():
    path = submissions_readme()
    if not path.is_file():
        raise NotFound("the submission guide (submissions/README.md) is not installed with this copy of the "
                       "site; see the PhaseBench repository")
    from markdown_it import MarkdownIt
    # Raw HTML in the markdown is escaped, never passed through.
    html = MarkdownIt("commonmark", {"html": False}).render(path.read_text(encoding="utf-8"))
    return render_template("submit.html", body=Markup(html))


@bp.app_context_processor
def _helpers():
    def sort_url(key: str, current: str, order: str, **args):
        nxt = ("asc" if order == "desc" else "desc") if key == current else None
        params: dict[str, Any] = {k: v for k, v in request.args.items() if k in ("split", "q", "all") and v}
        params.update(args)
        params["sort"] = key
        if nxt:
            params["order"] = nxt
        return url_for(request.endpoint or "", **(request.view_args or {}), **params)
    return {"sort_url": sort_url}


def card_section_html(task: str) -> str | None:
    """The task's section of the dataset card (generated from its metadata and notes), rendered without
    its heading; raw HTML in the notes stays escaped."""
    try:
        return _card_html(get_task(task))
    except UnknownNameError:
        return None


@cache
def _card_html(task: Task) -> str:
    # Keyed by the registered object, not its name: a task registered again is a new section.
    from markdown_it import MarkdownIt

    from benchmark.card import task_section

    body = task_section(task).split("\n", 1)[-1]  # the page has its own heading
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(body)
