"""A task's board and what it derives from its finished evaluations, shared by the evaluator (which
stores a snapshot when an evaluation finishes) and the website (which reads it, or computes the same
with the same functions when it is missing or stale), so that the two can never disagree.

- :func:`build_board`: the current rows ranked, floors and in-sample rows set apart, stale rows by
  task version;
- :func:`compute_layout`: what a page of the board needs from every row's summary (its group
  columns, the ranked instances), so that a page can parse only the summaries of the rows it shows;
- :func:`compute_intervals`, :func:`compute_skills`, :func:`compute_detectable`: bootstrap rank
  intervals, skill against the best floor and the detectable difference, each over the instance
  values an :data:`InstanceTable` gives, under a key (:func:`intervals_key`, ...) that names every
  input it depends on;
- :class:`BoardSnapshot`: those three stored as JSON (versioned by :data:`SNAPSHOT_FORMAT`), each with
  its key: a reader uses a value only when its own key is the same, so a snapshot written for other
  rows or by other code is ignored, never shown;
- :func:`board_rows`: the board as its readers show it, one JSON text per row (:func:`row_json`) plus
  a small header (:class:`BoardHeader`) and the entries of the overall ranking, stored with the
  snapshot (``board_rows``) so that a page or an API answer reads the slice it shows and no more;
- :func:`refresh_board_snapshot`: what the evaluator calls after it finishes an evaluation.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from benchmark.metadata import TaskMetadata
from benchmark.stats import (
    N_BOOT,
    SEED,
    PairedDiff,
    RankInterval,
    Skill,
    detectable_difference,
    format_rank_interval,
    rank_intervals,
    skill_against_floor,
)

from ..store import BoardRowRecord, LeaderboardRow, ResultsStore
from .ranking import RankedRow, rank_rows, summary_of
from .summary import EvaluationSummary

__all__ = [
    "SNAPSHOT_FORMAT",
    "Board",
    "BoardSnapshot",
    "InstanceTable",
    "StaleSection",
    "best_floor",
    "build_board",
    "MAX_PLOT_SERIES",
    "TOP_PLOTTED",
    "BoardHeader",
    "PlottedRow",
    "as_json",
    "BoardLayout",
    "OverallEntry",
    "StoredBoard",
    "board_digest",
    "board_header",
    "board_rows",
    "build_snapshot",
    "dump_json",
    "combine_instance_values",
    "compute_detectable",
    "compute_intervals",
    "compute_layout",
    "group_columns",
    "interval_json",
    "layout_key",
    "overall_entries",
    "plot_rows",
    "plotted",
    "compute_skills",
    "detectable_key",
    "intervals_key",
    "ranked_instance_values",
    "read_snapshot",
    "read_stored_board",
    "reference_kind",
    "refresh_board_snapshot",
    "row_json",
    "skill_key",
    "skill_params",
    "store_instance_table",
]

# The version of the stored snapshot's JSON (board_snapshots.payload). Bump it when its content
# changes; a reader ignores a snapshot of another format (and computes the values itself).
# 1: first format (rank intervals, skill against the best floor, detectable difference).
# 2: + the board's layout (group columns, ranked instances), and its rows stored one per row
#    (board_rows: the API's row JSON, a header and the overall ranking's entries).
SNAPSHOT_FORMAT = 2

# ({evaluation_id: {instance_id: value}}, {instance_id: group}) over the ranked instances of the
# given evaluations (the task's unranked groups left out), for one metric.
InstanceTable = Callable[[list[int], str, TaskMetadata],
                         tuple[dict[int, dict[str, float | None]], dict[str, str]]]
RankedValues = tuple[dict[str, float | None], dict[str, str]]


@dataclass
class StaleSection:
    version: int
    rows: list[RankedRow]


@dataclass
class Board:
    meta: TaskMetadata
    split: str
    fingerprint: tuple
    current: list[RankedRow]                  # the ranked methods of the current task version
    stale: list[StaleSection]
    # Reference rows of the current version, shown but never ranked: the no-skill floors (best
    # first), and methods fitted on this split's public answers (in-sample here).
    floors: list[RankedRow] = field(default_factory=list)
    in_sample: list[RankedRow] = field(default_factory=list)
    memo: dict = field(default_factory=dict)   # derived outputs (rendered pages, JSON), same lifetime

    @property
    def all_rows(self) -> list[RankedRow]:
        return self.current + self.floors + self.in_sample + [r for s in self.stale for r in s.rows]

    def memoize(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self.memo:
            if len(self.memo) > 64:
                self.memo.clear()
            self.memo[key] = compute()
        return self.memo[key]


def reference_kind(spec: object, split: str) -> str | None:
    """"floor", "in-sample" (fitted on this split's answers) or None (a ranked method)."""
    spec = spec if isinstance(spec, dict) else {}
    if spec.get("floor") is True:
        return "floor"
    fitted = spec.get("fitted_on")
    if isinstance(fitted, list) and split in fitted:
        return "in-sample"
    return None


def build_board(meta: TaskMetadata, split: str, fingerprint: tuple, rows: list[LeaderboardRow],
                read_summary: Callable[[Any], EvaluationSummary] = summary_of) -> Board:
    """The board of ``rows`` (the newest finished evaluation of each submission, newest first)."""
    current = [r for r in rows if r.evaluation.task_version == meta.version]
    kinds = {id(r): reference_kind(r.submission.meta, split) for r in current}
    floors = rank_rows([r for r in current if kinds[id(r)] == "floor"], meta, read_summary)
    in_sample = rank_rows([r for r in current if kinds[id(r)] == "in-sample"], meta, read_summary)
    for row in floors + in_sample:
        row.rank = None
    current = [r for r in current if kinds[id(r)] is None]
    stale_by_version: dict[int, list] = {}
    for r in rows:
        if r.evaluation.task_version != meta.version:
            stale_by_version.setdefault(r.evaluation.task_version, []).append(r)
    stale = []
    for version in sorted(stale_by_version, reverse=True):
        ranked = rank_rows(stale_by_version[version], meta, read_summary)
        for row in ranked:       # ordered by the headline, but never given a rank
            row.rank = None
        stale.append(StaleSection(version, ranked))
    return Board(meta, split, fingerprint, rank_rows(current, meta, read_summary), stale, floors, in_sample)


def best_floor(board: Board) -> RankedRow | None:
    """The out-of-sample floor with the best headline (the zero of skill), or None."""
    # A floor fitted on this split's answers (in-sample) would set the zero of skill with a score
    # it cannot reach on unseen instances: only out-of-sample floors count.
    return next((r for r in board.floors if r.headline is not None and not r.in_sample(board.split)), None)


def group_columns(groups_seen: list[dict[str, Any]], meta: TaskMetadata | None) -> list[str]:
    """Groups that appear in any of ``groups_seen``, in the task's declared order, then the rest."""
    seen: set[str] = set()
    for g in groups_seen:
        seen.update(g)
    declared = [g for g in (meta.groups if meta else []) if g in seen]
    return declared + sorted(seen - set(declared))


@dataclass(frozen=True)
class BoardLayout:
    group_columns: list[str]            # the groups any row of the board has, declared order first
    n_ranked_instances: int | None      # instances that count towards the ranking, as the best-evaluated row saw them


def layout_key(board: Board) -> tuple:
    return ("layout", tuple(r.evaluation.id for r in board.all_rows),
            tuple(r.evaluation.id for r in board.current + board.floors), tuple(board.meta.groups))


def compute_layout(board: Board) -> BoardLayout:
    """What the board's pages need from every row's summary (each summary is parsed)."""
    groups = group_columns([r.groups for r in board.all_rows], board.meta)
    counts = [r.summary.n_ranked for r in board.current + board.floors if r.summary.n_instances is not None]
    return BoardLayout(groups, max(counts) if counts else None)


# --- instance values -----------------------------------------------------------------------------
def ranked_instance_values(rows: list[tuple[str, str, float | None]], meta: TaskMetadata) -> RankedValues:
    """``({instance_id: value}, {instance_id: group})`` of one evaluation's ranked instances."""
    return ({inst: v for inst, group, v in rows if meta.ranked(group)},
            {inst: group for inst, group, _ in rows if meta.ranked(group)})


def combine_instance_values(evaluation_ids: list[int], ranked: Callable[[int], RankedValues]
                            ) -> tuple[dict[int, dict[str, float | None]], dict[str, str]]:
    """The :data:`InstanceTable` answer from each evaluation's ranked values."""
    out: dict[int, dict[str, float | None]] = {}
    groups: dict[str, str] = {}
    for ev_id in evaluation_ids:
        values, of = ranked(ev_id)
        out[ev_id] = values
        groups.update(of)
    return out, groups


def store_instance_table(store: ResultsStore) -> InstanceTable:
    """An :data:`InstanceTable` reading ``store`` (one query per call, nothing kept)."""
    def table(evaluation_ids: list[int], metric: str, meta: TaskMetadata):
        raw = store.instance_values(list(evaluation_ids), metric)
        return combine_instance_values(evaluation_ids, lambda i: ranked_instance_values(raw[i], meta))
    return table


# --- derived values, each under the key of everything it depends on --------------------------
def intervals_key(board: Board) -> tuple:
    ids = tuple(r.evaluation.id for r in board.current if r.rank is not None)
    metric = board.meta.headline_metric
    return ("intervals", ids, metric.name, metric.higher_is_better, metric.aggregation,
            tuple(board.meta.unranked_groups), N_BOOT, SEED)


def compute_intervals(board: Board, table: InstanceTable) -> dict[int, RankInterval]:
    """``{evaluation_id: RankInterval}`` for the ranked current rows."""
    ids = intervals_key(board)[1]
    metric = board.meta.headline_metric
    values, groups = table(list(ids), metric.name, board.meta)
    intervals = rank_intervals([values[i] for i in ids], metric.higher_is_better, metric.aggregation,
                               groups=groups)
    return dict(zip(ids, intervals))


def _skill_rows(board: Board) -> tuple[int, ...]:
    return tuple(r.evaluation.id for r in board.current + board.in_sample if r.headline is not None)


def skill_key(board: Board) -> tuple | None:
    """The key of the board's skills (None without a floor)."""
    floor = best_floor(board)
    if floor is None:
        return None
    metric = board.meta.headline_metric
    return ("skill", _skill_rows(board), floor.evaluation.id, metric.name, metric.aggregation, metric.best,
            tuple(board.meta.unranked_groups), N_BOOT, SEED)


def skill_params(board: Board) -> tuple | None:
    """What one row's skill depends on besides its own values (None without a floor): the floor's
    evaluation (its values and name) and the metric; with the row's evaluation id, the key of it."""
    floor = best_floor(board)
    if floor is None:
        return None
    metric = board.meta.headline_metric
    return (floor.evaluation.id, floor.submission.name, metric.name, metric.aggregation, metric.best,
            metric.higher_is_better, tuple(board.meta.unranked_groups), N_BOOT, SEED)


def compute_skills(board: Board, table: InstanceTable,
                   keep: Callable[[int, Callable[[], Skill]], Skill] | None = None) -> dict[int, Skill]:
    """``{evaluation_id: Skill}`` of every ranked and in-sample row against the best floor, over the
    ranked instances both answered; empty without a floor. ``keep(evaluation_id, compute)`` may
    serve a row's skill computed before under the same :func:`skill_params`."""
    floor = best_floor(board)
    if floor is None:
        return {}
    ids = _skill_rows(board)
    metric = board.meta.headline_metric
    values, groups = table([*ids, floor.evaluation.id], metric.name, board.meta)
    reference = values[floor.evaluation.id]
    # A row's skill depends on its own values and the floor's alone (the strata of the shared
    # instances are the floor's groups: it comes last in the table).

    def one(i: int) -> Skill:
        return skill_against_floor(values[i], reference, metric, floor.submission.name, groups)
    return {i: (one(i) if keep is None else keep(i, lambda i=i: one(i))) for i in ids}


def detectable_key(board: Board) -> tuple:
    rows = [r for r in board.floors + board.current if (r.floor or r.baseline) and r.headline is not None]
    metric = board.meta.headline_metric
    return ("detectable", tuple(r.evaluation.id for r in rows), metric.name, metric.aggregation,
            tuple(board.meta.unranked_groups), N_BOOT, SEED)


def compute_detectable(board: Board, table: InstanceTable) -> float | None:
    """The smallest headline difference this split separates at 95% (see
    :func:`benchmark.stats.detectable_difference`), measured on the floors and baselines."""
    ids = detectable_key(board)[1]
    metric = board.meta.headline_metric
    values, groups = table(list(ids), metric.name, board.meta)
    return detectable_difference([values[i] for i in ids], metric, groups)


# --- the board as its readers show it ------------------------------------------------------------
def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None     # as pydantic writes a non-finite float
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def dump_json(value: Any) -> str:
    """JSON as the website answers it (Flask's: sorted keys, compact, ASCII; a non-finite number as
    null); a stored row is this text, spliced into the answer unparsed."""
    return json.dumps(_json_safe(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def interval_json(iv: RankInterval | None) -> dict[str, Any] | None:
    if iv is None:
        return None
    return {"low": int(iv.low), "high": int(iv.high), "label": format_rank_interval(iv.low, iv.high),
            "tied_with_previous": bool(iv.tied_with_previous)}


def _skill_json(skill: Skill | None) -> dict[str, Any] | None:
    if skill is None:
        return None
    out = skill.to_json()
    out["n"] = int(out["n"])
    out["beats_floor"] = bool(out["beats_floor"])
    return out


def row_json(board: Board, row: RankedRow, section: str, intervals: dict[int, RankInterval],
             skills: dict[int, Skill]) -> dict[str, Any]:
    """One row as the API shows it: a current row with its rank interval; current and in-sample rows
    with their skill against the best floor (floors and stale rows have no skill key)."""
    ev_id = row.evaluation.id
    out = {**row.to_json(board.meta), "sandbox": row.evaluation.sandbox, "device": row.evaluation.device,
           "rank_interval": interval_json(intervals.get(ev_id)) if section == "current" else None}
    if section in ("current", "in-sample"):
        out["skill"] = _skill_json(skills.get(ev_id))
    return out


TOP_PLOTTED = 5        # the best current submissions always plotted ...
MAX_PLOT_SERIES = 8    # ... then highlighted baselines, up to this many series in all


def plot_rows(rows: list[RankedRow]) -> list[RankedRow]:
    """The submissions a task plot shows: the ``TOP_PLOTTED`` best ranked rows, then baselines
    (best first) until ``MAX_PLOT_SERIES``, in leaderboard order."""
    ranked = [r for r in rows if r.rank is not None]
    chosen = ranked[:TOP_PLOTTED]
    for r in ranked[TOP_PLOTTED:]:
        if len(chosen) >= MAX_PLOT_SERIES:
            break
        if r.baseline:
            chosen.append(r)
    return chosen


@dataclass(frozen=True)
class PlottedRow:
    """What a plot's series names of its row."""
    evaluation_id: int
    submission: str
    baseline: bool
    rank: int | None


def plotted(rows: list[RankedRow]) -> list[PlottedRow]:
    return [PlottedRow(r.evaluation.id, r.submission.name, r.baseline, r.rank) for r in rows]


# One ranked row's part in the overall ranking: (submission, baseline, rank, skill, evaluation id).
OverallEntry = tuple[str, bool, int, float, int]


def overall_entries(board: Board, skills: dict[int, Skill]) -> list[OverallEntry]:
    """The ranked current rows that have a skill against the best floor, in board order."""
    out: list[OverallEntry] = []
    for row in board.current:
        skill = skills.get(row.evaluation.id)
        if row.rank is None or skill is None or skill.value is None:
            continue
        out.append((row.submission.name, row.baseline, int(row.rank), float(skill.value), int(row.evaluation.id)))
    return out


class BoardHeader(BaseModel):
    """What a board's pages show besides its rows."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    digest: str                              # board_digest of the code and task metadata it was built with
    n_current: int
    n_stale: int
    floor: str | None                        # the best floor's submission name and evaluation id
    floor_evaluation_id: int | None
    detectable_difference: float | None
    group_columns: list[str]
    n_ranked_instances: int | None
    leader: dict[str, Any] | None             # the first ranked current row (RankedRow.to_json)
    plotted: list[tuple[int, str, bool, int | None]]   # the rows the task's plots show (PlottedRow's fields)


def board_digest(meta: TaskMetadata) -> str:
    """Everything besides the results that a stored board depends on: the task's metadata, the
    bootstrap's settings and this code's format. A stored board of another digest is not shown."""
    text = json.dumps([meta.model_dump(mode="json"), N_BOOT, SEED, SNAPSHOT_FORMAT], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def board_header(board: Board, detectable: float | None, layout: BoardLayout) -> BoardHeader:
    floor = best_floor(board)
    leader = next((r for r in board.current if r.rank is not None), None)
    return BoardHeader(
        digest=board_digest(board.meta), n_current=len(board.current), n_stale=sum(len(s.rows) for s in board.stale),
        floor=floor.submission.name if floor else None, floor_evaluation_id=floor.evaluation.id if floor else None,
        detectable_difference=detectable if _finite(detectable) else None, group_columns=layout.group_columns,
        n_ranked_instances=layout.n_ranked_instances,
        leader=leader.to_json(board.meta) if leader is not None else None,
        plotted=[(p.evaluation_id, p.submission, p.baseline, p.rank) for p in plotted(plot_rows(board.current))])


@dataclass
class StoredBoard:
    """A board as stored (or computed the same way): its header and rows as JSON texts, by section;
    ``current`` may be a slice (``offset`` its first position) and ``overall`` may be left out."""
    header: BoardHeader
    current: list[str]
    floors: list[str]
    in_sample: list[str]
    stale: list[tuple[int, list[str]]]      # (task version, rows), newest version first
    overall: list[OverallEntry] | None = None
    offset: int = 0


def board_rows(board: Board, intervals: dict[int, RankInterval], skills: dict[int, Skill],
               detectable: float | None, layout: BoardLayout) -> list[BoardRowRecord]:
    """The records that store ``board`` (see :class:`StoredBoard`); a reader orders each section by
    position. Sections: "header", "overall" (one record each), "current", "floor", "in-sample",
    "stale" (ordered by task version, newest first, then board order)."""
    def record(section: str, position: int, payload: Any, row: RankedRow | None = None) -> BoardRowRecord:
        return BoardRowRecord(section, position, row.evaluation.task_version if row else board.meta.version,
                              row.evaluation.id if row else None, dump_json(payload))
    records = [record("header", 0, board_header(board, detectable, layout).model_dump(mode="json")),
               record("overall", 0, overall_entries(board, skills))]
    for section, rows in (("current", board.current), ("floor", board.floors), ("in-sample", board.in_sample),
                          ("stale", [r for s in board.stale for r in s.rows])):
        records += [record(section, i, row_json(board, r, section, intervals, skills), r) for i, r in enumerate(rows)]
    return records


def stored_board_of(records: list[BoardRowRecord], with_overall: bool) -> StoredBoard | None:
    """The :class:`StoredBoard` of records read back (None without a readable header)."""
    by: dict[str, list[BoardRowRecord]] = {}
    for rec in records:
        by.setdefault(rec.section, []).append(rec)
    headers = by.get("header", [])
    if len(headers) != 1:
        return None
    try:
        header = BoardHeader.model_validate_json(headers[0].payload)
    except ValidationError:
        return None
    current = sorted(by.get("current", []), key=lambda r: r.position)
    stale: list[tuple[int, list[str]]] = []
    for rec in sorted(by.get("stale", []), key=lambda r: r.position):
        if not stale or stale[-1][0] != rec.task_version:
            stale.append((rec.task_version, []))
        stale[-1][1].append(rec.payload)
    overall = None
    if with_overall:
        found = by.get("overall", [])
        if len(found) != 1:
            return None
        overall = [(str(n), bool(b), int(k), float(v), int(e)) for n, b, k, v, e in json.loads(found[0].payload)]
    return StoredBoard(header, [r.payload for r in current],
                       [r.payload for r in sorted(by.get("floor", []), key=lambda r: r.position)],
                       [r.payload for r in sorted(by.get("in-sample", []), key=lambda r: r.position)],
                       stale, overall, current[0].position if current else 0)


def read_stored_board(store: ResultsStore, meta: TaskMetadata, split: str, fingerprint: tuple,
                      offset: int = 0, limit: int | None = None, with_overall: bool = False) -> StoredBoard | None:
    """The stored board of (``meta``'s task and version, ``split``) when it was built for
    ``fingerprint`` with this code and metadata (:func:`board_digest`), with the current rows
    ``[offset, offset + limit)`` only; else None."""
    records = store.board_rows(meta.name, meta.version, split, fingerprint_text(fingerprint), offset, limit,
                               with_overall)
    stored = stored_board_of(records, with_overall)
    if stored is None or stored.header.digest != board_digest(meta):
        return None
    return stored


# --- the stored snapshot -------------------------------------------------------------------------
Number = int | float | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoredInterval(_Strict):
    low: int
    high: int
    tied_with_previous: bool

    def to_interval(self) -> RankInterval:
        return RankInterval(self.low, self.high, self.tied_with_previous)


class StoredPairedDiff(_Strict):
    n: int
    value_a: Number
    value_b: Number
    diff: Number
    ci_low: Number
    ci_high: Number
    aggregation: str


class StoredSkill(_Strict):
    floor: str
    n: int
    value: Number
    ci_low: Number
    ci_high: Number
    gain: StoredPairedDiff

    @classmethod
    def of(cls, s: Skill) -> StoredSkill:
        g = s.gain
        return cls(floor=s.floor, n=int(s.n), value=s.value, ci_low=s.ci_low, ci_high=s.ci_high,
                   gain=StoredPairedDiff(n=int(g.n), value_a=g.value_a, value_b=g.value_b, diff=g.diff,
                                         ci_low=g.ci_low, ci_high=g.ci_high, aggregation=g.aggregation))

    def to_skill(self) -> Skill:
        g = self.gain
        return Skill(self.floor, self.n, self.value, self.ci_low, self.ci_high,
                     PairedDiff(g.n, g.value_a, g.value_b, g.diff, g.ci_low, g.ci_high, g.aggregation))


class BoardSnapshot(_Strict):
    """What :func:`build_snapshot` stores. Each value carries the key it was computed under (as
    JSON: tuples become lists); ``None`` for a part that could not be stored (a non-finite number)."""
    snapshot_format: int = SNAPSHOT_FORMAT
    task: str
    task_version: int
    split: str
    fingerprint: list[Any]
    intervals_key: list[Any] | None = None
    intervals: dict[int, StoredInterval] = {}
    skill_key: list[Any] | None = None
    skill_params: list[Any] | None = None
    skills: dict[int, StoredSkill] = {}
    detectable_key: list[Any] | None = None
    detectable_difference: float | None = None
    layout_key: list[Any] | None = None
    group_columns: list[str] = []
    n_ranked_instances: int | None = None

    def intervals_for(self, key: tuple) -> dict[int, RankInterval] | None:
        if self.intervals_key is None or self.intervals_key != as_json(key):
            return None
        return {i: v.to_interval() for i, v in self.intervals.items()}

    def skills_for(self, key: tuple | None) -> dict[int, Skill] | None:
        if key is None or self.skill_key is None or self.skill_key != as_json(key):
            return None
        return {i: v.to_skill() for i, v in self.skills.items()}

    def detectable_for(self, key: tuple) -> tuple[bool, float | None]:
        """(found, value): the stored detectable difference when computed under ``key``."""
        if self.detectable_key is None or self.detectable_key != as_json(key):
            return False, None
        return True, self.detectable_difference

    def layout_for(self, key: tuple) -> BoardLayout | None:
        if self.layout_key is None or self.layout_key != as_json(key):
            return None
        return BoardLayout(list(self.group_columns), self.n_ranked_instances)


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _finite(*values: Any) -> bool:
    return all(v is None or (isinstance(v, (int, float)) and math.isfinite(v)) for v in values)


def build_snapshot(board: Board, table: InstanceTable, previous: BoardSnapshot | None = None) -> BoardSnapshot:
    """The snapshot of ``board``; the skills of rows that ``previous`` holds under the same floor
    and metric are taken from it (after a new result only the newcomer's is computed)."""
    meta = board.meta
    intervals = compute_intervals(board, table)
    params = skill_params(board)
    reuse: dict[int, StoredSkill] = {}
    if previous is not None and params is not None and previous.skill_params == as_json(params):
        reuse = dict(previous.skills)
    stored_skills: dict[int, StoredSkill] = {}

    def keep(i: int, compute: Callable[[], Skill]) -> Skill:
        stored_skills[i] = reuse[i] if i in reuse else StoredSkill.of(compute())
        return stored_skills[i].to_skill()
    compute_skills(board, table, keep)
    skills_ok = all(_finite(s.value, s.ci_low, s.ci_high, s.gain.value_a, s.gain.value_b, s.gain.diff,
                            s.gain.ci_low, s.gain.ci_high) for s in stored_skills.values())
    detectable = compute_detectable(board, table)
    layout = compute_layout(board)
    skey = skill_key(board)
    return BoardSnapshot(
        task=meta.name, task_version=meta.version, split=board.split, fingerprint=as_json(list(board.fingerprint)),
        intervals_key=as_json(intervals_key(board)),
        intervals={i: StoredInterval(low=int(v.low), high=int(v.high), tied_with_previous=bool(v.tied_with_previous))
                   for i, v in intervals.items()},
        skill_key=as_json(skey) if skey is not None and skills_ok else None,
        skill_params=as_json(params) if params is not None and skills_ok else None,
        skills=stored_skills if skills_ok else {},
        detectable_key=as_json(detectable_key(board)) if _finite(detectable) else None,
        detectable_difference=detectable if _finite(detectable) else None,
        layout_key=as_json(layout_key(board)), group_columns=layout.group_columns,
        n_ranked_instances=layout.n_ranked_instances)


def fingerprint_text(fingerprint: tuple) -> str:
    return json.dumps(as_json(list(fingerprint)))


def read_snapshot(store: ResultsStore, meta: TaskMetadata, split: str,
                  fingerprint: tuple | None = None) -> BoardSnapshot | None:
    """The stored snapshot of the board of (``meta``'s task and version, ``split``), when it is of
    this code's format and (with ``fingerprint``) was computed for that board; else None."""
    found = store.board_snapshot(meta.name, meta.version, split)
    if found is None:
        return None
    stored_fp, fmt, payload = found
    if fmt != SNAPSHOT_FORMAT or (fingerprint is not None and stored_fp != fingerprint_text(fingerprint)):
        return None
    try:
        snapshot = BoardSnapshot.model_validate(payload)
    except ValidationError:
        return None           # written by hand or by other code: computed again instead
    return snapshot if snapshot.snapshot_format == SNAPSHOT_FORMAT else None


def refresh_board_snapshot(store: ResultsStore, meta: TaskMetadata, split: str) -> bool:
    """Compute and store the snapshot of a board as it is now (the evaluator calls it after each
    finished evaluation); False when the board changed meanwhile (the writer of the newer result
    stores that one). A part that could not be stored (a non-finite number) is left out: the
    website computes it."""
    fingerprint = store.board_fingerprint(meta.name, split)
    if read_snapshot(store, meta, split, fingerprint) is not None and \
            read_stored_board(store, meta, split, fingerprint, limit=0) is not None:
        return True       # already stored for this board, by this code (e.g. imported with the results)
    board = build_board(meta, split, fingerprint, store.latest_finished(meta.name, split))
    if store.board_fingerprint(meta.name, split) != fingerprint:
        return False
    snapshot = build_snapshot(board, store_instance_table(store), read_snapshot(store, meta, split))
    if store.board_fingerprint(meta.name, split) != fingerprint:
        return False
    payload = snapshot.model_dump(mode="python")
    text = json.dumps(payload, allow_nan=False)   # PostgreSQL's JSON refuses NaN; checked above
    table = store_instance_table(store)
    intervals = snapshot.intervals_for(intervals_key(board)) or {}
    skills = snapshot.skills_for(skill_key(board))
    if skills is None:
        skills = compute_skills(board, table)
    found, detectable = snapshot.detectable_for(detectable_key(board))
    rows = board_rows(board, intervals, skills, detectable if found else compute_detectable(board, table),
                      compute_layout(board))
    store.put_board_snapshot(meta.name, meta.version, split, fingerprint_text(fingerprint), SNAPSHOT_FORMAT,
                             json.loads(text), rows)
    return True
