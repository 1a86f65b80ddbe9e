"""What the pages and the API show, computed once and shared so both always agree: a task's
leaderboard (current rows ranked, stale rows set apart), rank intervals, the overall ranking and
comparisons of two evaluations.

Leaderboards read summary rows only (the ``evaluations`` table) and are cached per app keyed by
:func:`db.board_fingerprint`. Rank intervals, skill against the floor and the detectable difference
come from the board snapshot the evaluator stored when the board's last evaluation finished
(:mod:`evaluator.results.board`; used only when computed for this board's fingerprint and keys);
without one they are computed here by the same functions over the per-instance rows (one bulk
query, cached per set of evaluation ids). The in-process caches are on unless
PHASEBENCH_LEADERBOARD_CACHE is off.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchmark.dataset import instance_results_public
from benchmark.metadata import TaskMetadata
from benchmark.stats import (
    N_BOOT,
    SEED,
    SKILL_CLIP,
    PairedDiff,
    RankInterval,
    Skill,
    hidden_split_slices,
    paired_difference,
)
from evaluator.results.board import (
    Board,
    BoardLayout,
    BoardSnapshot,
    OverallEntry,
    PlottedRow,
    StaleSection,
    StoredBoard,
    as_json,
    best_floor,
    board_header,
    build_board,
    compute_detectable,
    compute_intervals,
    compute_layout,
    compute_skills,
    detectable_key,
    dump_json,
    interval_json,
    intervals_key,
    layout_key,
    overall_entries,
    row_json,
    skill_key,
    skill_params,
)
from evaluator.results.ranking import RankedRow
from evaluator.results.summary import clean_number
from evaluator.store import Evaluation

from . import db
from .plots import PlotData, build_plot

__all__ = [
    "OVERALL_RULE",
    "Board",
    "CompareError",
    "Comparison",
    "OverallRow",
    "StaleSection",
    "best_floor",
    "board_detectable_difference",
    "board_intervals",
    "board_layout",
    "board_plots",
    "board_view",
    "header_plotted",
    "shown",
    "board_skill",
    "compare",
    "get_board",
    "interval_json",
    "overall_ranking",
    "ShownRow",
    "ShownStale",
    "sort_keys",
    "sorted_filtered",
]


def _build_board(meta: TaskMetadata, split: str, fingerprint: tuple) -> Board:
    return build_board(meta, split, fingerprint, db.latest_finished(meta.name, split), db.stored_summary)


def get_board(meta: TaskMetadata, split: str) -> Board:
    fp = db.board_fingerprint(meta.name, split)
    return db.cache().get_or_compute(("board", meta.name, meta.version, split, fp),
                                     lambda: _build_board(meta, split, fp))


def _snapshot(board: Board) -> BoardSnapshot | None:
    """The evaluator's stored snapshot of this board (read once per board), or None when there is
    none for its fingerprint (an old database, or results written by an older evaluator)."""
    return board.memoize(("snapshot",), lambda: db.board_snapshot(board.meta, board.split, board.fingerprint))


def board_intervals(board: Board) -> dict[int, RankInterval]:
    """``{evaluation_id: RankInterval}`` for the ranked current rows: the stored snapshot's, else
    computed the same way (one bulk instance query), cached per evaluation ids + headline."""
    key = intervals_key(board)

    def compute() -> dict[int, RankInterval]:
        snapshot = _snapshot(board)
        stored = snapshot.intervals_for(key) if snapshot is not None else None
        return stored if stored is not None else compute_intervals(board, db.instance_table)
    return db.cache().get_or_compute(key, compute)


def board_skill(board: Board) -> dict[int, Skill]:
    """``{evaluation_id: Skill}`` of every ranked and in-sample row against the best floor, over
    the ranked instances both answered (the stored snapshot's, else computed; cached per evaluation
    ids); empty without a floor."""
    key = skill_key(board)
    if key is None:
        return {}

    def compute() -> dict[int, Skill]:
        # each row's skill is kept per evaluation and floor: after a new result only the newcomer's is
        # computed, also when the rows before it were read from a snapshot that the new result made stale
        kept = db.per_evaluation()
        params = skill_params(board) or ()
        snapshot = _snapshot(board)
        stored = snapshot.skills_for(key) if snapshot is not None else None
        if stored is not None:
            for i, skill in stored.items():
                kept.put(("skill", i, *params), skill)
            return stored
        # A result the snapshot does not cover yet: the rows the last snapshot holds under the same
        # floor and metric keep their skill (as the evaluator's next snapshot will), even on a fresh app.
        rows = [r.evaluation.id for r in board.current + board.in_sample if r.headline is not None]
        unknown = sum(kept.get(("skill", i, *params)) is None for i in rows)
        previous = db.board_snapshot(board.meta, board.split, None) if unknown > 1 else None
        if previous is not None and previous.skill_params == as_json(params):
            for i, s in previous.skills.items():
                if kept.get(("skill", i, *params)) is None:
                    kept.put(("skill", i, *params), s.to_skill())
        return compute_skills(board, db.instance_table, lambda i, f: kept.get_or_compute(("skill", i, *params), f))
    return db.cache().get_or_compute(key, compute)


def board_detectable_difference(board: Board) -> float | None:
    """The smallest headline difference this split separates at 95% (see
    :func:`benchmark.stats.detectable_difference`), measured on the floors and baselines: the
    stored snapshot's, else computed."""
    key = detectable_key(board)

    def compute() -> float | None:
        snapshot = _snapshot(board)
        found, value = snapshot.detectable_for(key) if snapshot is not None else (False, None)
        return value if found else compute_detectable(board, db.instance_table)
    return db.cache().get_or_compute(key, compute)


def board_layout(board: Board) -> BoardLayout:
    """The board's group columns and ranked instances: the stored snapshot's, else computed (which
    parses every row's summary), cached per the board's evaluation ids."""
    key = layout_key(board)

    def compute() -> BoardLayout:
        snapshot = _snapshot(board)
        stored = snapshot.layout_for(key) if snapshot is not None else None
        if stored is not None:
            return stored
        shown(board.all_rows)
        return compute_layout(board)
    return db.cache().get_or_compute(key, compute)


def board_view(meta: TaskMetadata, split: str, offset: int = 0, limit: int | None = None,
               with_overall: bool = False) -> StoredBoard:
    """The board as its pages and API show it, with the current rows ``[offset, offset + limit)``:
    the rows the evaluator stored for this board (ONE query; no board is built), else built from the
    results with the same functions (:func:`evaluator.results.board.board_rows`)."""
    fp = db.board_fingerprint(meta.name, split)

    def read() -> StoredBoard:
        stored = db.stored_board(meta, split, fp, offset, limit, with_overall)
        return stored if stored is not None else _computed_view(get_board(meta, split), offset, limit, with_overall)
    return db.cache().get_or_compute(("view", meta.name, meta.version, split, fp, offset, limit, with_overall), read)


def _computed_view(board: Board, offset: int, limit: int | None, with_overall: bool) -> StoredBoard:
    page = board.current[offset:] if limit is None else board.current[offset:offset + limit]
    stale = [r for s in board.stale for r in s.rows]
    shown(page + board.floors + board.in_sample + stale + board.current[:1])
    intervals = board_intervals(board) if page else {}
    skills = board_skill(board)

    def texts(rows: list[RankedRow], section: str) -> list[str]:
        return [dump_json(row_json(board, r, section, intervals, skills)) for r in rows]
    if limit == 0:
        # the overview's view (no current rows) leaves out what only a page of rows shows: computing
        # the detectable difference and parsing every summary for the columns would be for nothing
        header = board_header(board, None, BoardLayout([], None))
    else:
        header = board_header(board, board_detectable_difference(board), board_layout(board))
    return StoredBoard(header, texts(page, "current"), texts(board.floors, "floor"), texts(board.in_sample, "in-sample"),
                       [(s.version, texts(s.rows, "stale")) for s in board.stale],
                       overall_entries(board, skills) if with_overall else None, offset)


@dataclass(frozen=True)
class ShownEvaluation:
    id: int
    n_failed: int
    n_instances: int
    runtime_s: float | None
    sandbox: str
    device: str
    status: str
    finished_at: datetime | None


@dataclass(frozen=True)
class ShownSubmission:
    name: str


@dataclass(frozen=True)
class ShownSkill:
    value: float | None
    ci_low: float | None
    ci_high: float | None
    beats_floor: bool


@dataclass
class ShownRow:
    """A stored board row (:func:`evaluator.results.board.row_json`) as a page shows it: what the
    pages read of a RankedRow, with the row's rank interval and skill."""
    rank: int | None
    evaluation: ShownEvaluation
    submission: ShownSubmission
    baseline: bool
    floor: bool
    headline: float | None
    ci_low: float | None
    ci_high: float | None
    metrics: dict[str, dict[str, float | None]]
    groups: dict[str, dict[str, Any]]
    interval: RankInterval | None
    skill: ShownSkill | None

    @property
    def finished_at(self) -> datetime | None:
        return self.evaluation.finished_at

    @classmethod
    def of(cls, text: str) -> ShownRow:
        j = json.loads(text)
        finished = j["finished_at"]
        iv, sk = j.get("rank_interval"), j.get("skill")
        return cls(
            rank=j["rank"],
            evaluation=ShownEvaluation(j["evaluation_id"], j["n_failed"], j["n_instances"], j["runtime_s"],
                                       j["sandbox"], j["device"], j["status"],
                                       datetime.fromisoformat(finished) if finished else None),
            submission=ShownSubmission(j["submission"]), baseline=j["baseline"], floor=j["floor"],
            headline=j["headline"], ci_low=j["ci_low"], ci_high=j["ci_high"], metrics=j["metrics"],
            groups=j["groups"],
            interval=RankInterval(iv["low"], iv["high"], iv["tied_with_previous"]) if iv else None,
            skill=ShownSkill(sk["skill"], sk["ci_low"], sk["ci_high"], sk["beats_floor"]) if sk else None)


@dataclass(frozen=True)
class ShownStale:
    version: int
    rows: list[ShownRow]


def shown(rows: list[RankedRow]) -> list[RankedRow]:
    """``rows``, with the summaries they show read in one query (not one per row)."""
    db.prefetch_summaries([r.evaluation for r in rows])
    return rows


def board_plots(meta: TaskMetadata, rows: list[PlottedRow]) -> list[PlotData]:
    """The task's declared plots for ``rows`` (a board's: its header's ``plotted``).

    Every axis of every plot is read in ONE query over the rows' instance results, cached per
    evaluation ids + axes (a finished evaluation's instance results never change)."""
    specs = meta.plots
    if not specs:
        return []
    ids = tuple(r.evaluation_id for r in rows)
    axes = tuple(sorted({a for spec in specs for a in spec.axes}))

    def build() -> list[PlotData]:
        values = db.cache().get_or_compute(("plot-axes", ids, axes), lambda: db.instance_axes(list(ids), list(axes)))
        return [build_plot(spec, rows, values) for spec in specs]
    # the series carry ranks and names, which belong to the board
    return db.cache().get_or_compute(("plots", meta.name, meta.version, tuple(rows)), build)


def header_plotted(view: StoredBoard) -> list[PlottedRow]:
    return [PlottedRow(*p) for p in view.header.plotted]


# --- sorting and filtering of a board's current rows -------------------------------------------
def sort_keys(meta: TaskMetadata, groups: list[str]) -> list[str]:
    return (["rank", "name"] + [m.name for m in meta.metrics] + [f"group:{g}" for g in groups]
            + ["failed", "runtime", "date"])


def _sort_value(row: ShownRow, key: str, meta: TaskMetadata) -> Any:
    if key == "name":
        return row.submission.name.lower()
    if key == "rank":
        return row.rank
    if key == "failed":
        return row.evaluation.n_failed
    if key == "runtime":
        return clean_number(row.evaluation.runtime_s)
    if key == "date":
        return row.evaluation.finished_at.timestamp() if row.evaluation.finished_at else None
    if key.startswith("group:"):
        return clean_number(row.groups.get(key[6:], {}).get(meta.headline))
    if key == meta.headline:
        return row.headline
    return row.metrics.get(key, {}).get("value")


def sorted_filtered(rows: list[ShownRow], meta: TaskMetadata, sort: str, order: str, q: str) -> list[ShownRow]:
    """Rows whose submission name contains ``q`` (case-insensitive), sorted by ``sort`` in
    ``order`` ("asc"/"desc"); missing values always last. ``rank`` keeps the leaderboard order."""
    if q:
        needle = q.lower()
        rows = [r for r in rows if needle in r.submission.name.lower()]
    if sort == "rank":
        return list(reversed(rows)) if order == "desc" else list(rows)
    present = [r for r in rows if _sort_value(r, sort, meta) is not None]
    missing = [r for r in rows if _sort_value(r, sort, meta) is None]
    present.sort(key=lambda r: _sort_value(r, sort, meta), reverse=(order == "desc"))
    return present + missing


def default_order(sort: str, meta: TaskMetadata) -> str:
    """The natural first direction of a column: best first for metrics, A→Z for names."""
    m = next((m for m in meta.metrics if m.name == sort), None)
    if m is not None:
        return "desc" if m.higher_is_better else "asc"
    if sort.startswith("group:"):
        return "desc" if meta.headline_metric.higher_is_better else "asc"
    return "desc" if sort == "date" else "asc"


# --- the overall ranking across tasks ----------------------------------------------------------
OVERALL_RULE = ("A method's score on a task is its skill against the task's best no-skill floor: "
                "(m − f) / (best − f) of the headline, where m is the method's value, f the floor's on the "
                "same instances and best the value a perfect answer reaches. 1 is perfect; 0 is no better "
                "than a method without the skill. A task counts once a floor has been evaluated on it, and "
                "contributes its skill clipped to [−1, 1], so one task cannot outweigh the others. Methods "
                "are ordered first by how many tasks they have a skill on (more first), then by their mean "
                "skill over exactly those tasks (higher first): a method that skipped a task is never placed "
                "above one that entered more. Floors and results fitted on the split's own answers are shown "
                "on the task pages but never ranked.")


@dataclass
class OverallRow:
    position: int
    name: str
    baseline: bool
    ranks: dict[str, int]            # task -> rank (tasks with a skill only)
    skills: dict[str, float]         # task -> skill against the task's best floor, clipped
    evaluation_ids: dict[str, int]
    n_tasks: int
    mean_skill: float
    mean_rank: float

    def to_json(self, n_total_tasks: int) -> dict[str, Any]:
        return {"position": self.position, "submission": self.name, "baseline": self.baseline,
                "n_tasks": self.n_tasks, "n_total_tasks": n_total_tasks, "mean_skill": self.mean_skill,
                "mean_rank": self.mean_rank, "skills": self.skills, "ranks": self.ranks,
                "evaluation_ids": self.evaluation_ids}


def overall_ranking(boards: list[tuple[str, list[OverallEntry]]]) -> list[OverallRow]:
    """The overall ranking from each task's :func:`~evaluator.results.board.overall_entries`."""
    entries: dict[str, OverallRow] = {}
    low, high = SKILL_CLIP
    for task, ranked in boards:
        for name, baseline, rank, skill, evaluation_id in ranked:
            e = entries.setdefault(name, OverallRow(0, name, baseline, {}, {}, {}, 0, 0.0, 0.0))
            e.ranks[task] = rank
            e.skills[task] = min(high, max(low, skill))
            e.evaluation_ids[task] = evaluation_id
    for e in entries.values():
        e.n_tasks = len(e.skills)
        e.mean_skill = sum(e.skills.values()) / e.n_tasks
        e.mean_rank = sum(e.ranks.values()) / e.n_tasks
    ordered = sorted(entries.values(), key=lambda e: (-e.n_tasks, -e.mean_skill, e.name))
    position = 0
    for i, e in enumerate(ordered):
        prev = ordered[i - 1] if i else None
        if prev is None or (prev.n_tasks, prev.mean_skill) != (e.n_tasks, e.mean_skill):
            position = i + 1
        e.position = position
    return ordered


# --- comparing two evaluations -----------------------------------------------------------------
class CompareError(ValueError):
    pass


@dataclass
class Comparison:
    a: Evaluation
    b: Evaluation
    meta: TaskMetadata | None
    metric_names: list[str]
    shared: list[str]                       # instance ids both evaluated
    only_a: int
    only_b: int
    metrics: dict[str, PairedDiff]
    groups: dict[str, dict[str, PairedDiff]]  # group -> metric -> diff (no CI)
    instances: list[dict[str, Any]]
    instances_withheld: bool = False      # a hidden split's: instances left empty

    def higher_is_better(self, metric: str) -> bool | None:
        if self.meta is None:
            return None
        m = next((m for m in self.meta.metrics if m.name == metric), None)
        return None if m is None else m.higher_is_better

    def verdict(self, metric: str) -> str:
        d = self.metrics[metric]
        hib = self.higher_is_better(metric)
        if d.diff is None:
            return "no shared values"
        if not d.significant:
            return "not separable"
        if hib is None:
            return "A larger" if d.diff > 0 else "B larger"
        return "A better" if (d.diff > 0) == hib else "B better"

    def to_json(self) -> dict[str, Any]:
        def side(ev: Evaluation) -> dict[str, Any]:
            return {"evaluation_id": ev.id, "submission": ev.submission.name, "task_version": ev.task_version,
                    "split": ev.split, "status": ev.status, "headline": clean_number(ev.headline)}
        return {
            "task": self.a.task, "a": side(self.a), "b": side(self.b),
            "headline": self.meta.headline if self.meta else self.a.headline_metric,
            "n_shared": len(self.shared), "only_a": self.only_a, "only_b": self.only_b,
            "bootstrap": {"resamples": N_BOOT, "seed": SEED, "level": 0.95, "paired": True,
                          "stratified_by": "group",
                          "statistic": "the metric's declared aggregate of A minus that of B, over the shared "
                                       "instances of the ranked groups"},
            "metrics": {m: {**d.to_json(), "higher_is_better": self.higher_is_better(m), "verdict": self.verdict(m)}
                        for m, d in self.metrics.items()},
            "groups": {g: {m: {"n": d.n, "value_a": d.value_a, "value_b": d.value_b, "diff": d.diff}
                           for m, d in per.items()} for g, per in self.groups.items()},
            "instances_withheld": self.instances_withheld,
            "instances": self.instances,
        }


def _num(metrics: Any, name: str) -> float | None:
    return clean_number(metrics.get(name)) if isinstance(metrics, dict) else None


def _label(details: Any, key: str) -> int | None:
    value = clean_number(details.get(key)) if isinstance(details, dict) else None
    return None if value not in (0.0, 1.0) else int(value)   # type: ignore[arg-type]


def compare(a: Evaluation, b: Evaluation, meta: TaskMetadata | None, metric_names: list[str],
            group_order: Callable[[list[dict]], list[str]]) -> Comparison:
    if a.task != b.task:
        raise CompareError(f"evaluation {a.id} is on task {a.task!r} but evaluation {b.id} is on task "
                           f"{b.task!r}; only evaluations of the same task can be compared")
    ia = {i.instance_id: i for i in a.instances}
    ib = {i.instance_id: i for i in b.instances}
    shared = sorted(set(ia) & set(ib))
    declared = {m.name: m for m in meta.metrics} if meta else {}

    def diff(m: str, ids: list[str], with_ci: bool = True) -> PairedDiff:
        spec = declared.get(m)
        aggregation = spec.aggregation if spec else "mean"
        labels = None
        if spec is not None and spec.label is not None:
            labels = [_label(ia[i].details, spec.label) for i in ids]
        return paired_difference([(_num(ia[i].metrics, m), _num(ib[i].metrics, m)) for i in ids], aggregation,
                                 with_ci=with_ci, strata=[ia[i].group for i in ids], labels=labels)
    ranked = [i for i in shared if meta is None or meta.ranked(ia[i].group)]
    metrics = {m: diff(m, ranked) for m in metric_names}
    by_group: dict[str, list[str]] = {}
    for i in shared:
        by_group.setdefault(ia[i].group, []).append(i)
    if not (instance_results_public(a.split) and instance_results_public(b.split)):
        # a paired difference over one instance of a hidden split is that instance's scores
        allowed = hidden_split_slices(meta, [{"group": ia[i].group} for i in shared]).groups if meta else ()
        by_group = {g: ids for g, ids in by_group.items() if g in allowed}
    groups = {}
    for g in group_order([{k: None for k in by_group}]):
        groups[g] = {m: diff(m, by_group[g], with_ci=False) for m in metric_names}
    headline = meta.headline if meta else a.headline_metric
    instances = []
    for i in shared:
        va, vb = _num(ia[i].metrics, headline), _num(ib[i].metrics, headline)
        instances.append({"instance_id": i, "group": ia[i].group, "status_a": ia[i].status,
                          "status_b": ib[i].status, "a": va, "b": vb,
                          "diff": None if va is None or vb is None else va - vb,
                          "metrics_a": {k: clean_number(v) for k, v in (ia[i].metrics or {}).items()},
                          "metrics_b": {k: clean_number(v) for k, v in (ib[i].metrics or {}).items()}})
    return Comparison(a, b, meta, metric_names, shared, len(set(ia) - set(ib)), len(set(ib) - set(ia)),
                      metrics, groups, instances)

