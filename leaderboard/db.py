"""The one place the website gets its database engine and reads results.

The engine is created once per application (``create_app``) and kept on ``app.extensions``; every
read goes through the :class:`~evaluator.store.ResultsStore` built on it or through the read-only
helpers here. The website never writes.
"""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, defer

from benchmark.metadata import METRIC_PREFIX, TaskMetadata
from benchmark.settings import get_settings
from evaluator.store import (
    FINISHED,
    Evaluation,
    InstanceResult,
    LeaderboardRow,
    ResultsStore,
    Submission,
    database_url,
    make_engine,
    require_current,
)

from evaluator.results.board import (
    BoardSnapshot,
    StoredBoard,
    combine_instance_values,
    ranked_instance_values,
    read_snapshot,
    read_stored_board,
)
from evaluator.results.ranking import summary_of
from evaluator.results.summary import EvaluationSummary

from .cache import LRUCache

__all__ = [
    "EXTENSION",
    "board_fingerprint",
    "board_snapshot",
    "cache",
    "ensure_schema",
    "evaluation",
    "evaluations_of",
    "get_engine",
    "get_store",
    "init_app",
    "instance_axes",
    "instance_table",
    "latest_finished",
    "latest_submission",
    "per_evaluation",
    "prefetch_summaries",
    "stored_board",
    "stored_summary",
]

EXTENSION = "phasebench_db"


class _State:
    def __init__(self, engine: Engine, keep: bool = True):
        self.engine = engine
        self.store = ResultsStore(engine)
        self.schema_checked = False
        # keep=False (PHASEBENCH_LEADERBOARD_CACHE off): caches that hold nothing, so every request
        # reads the stored snapshots and results again
        self.cache = LRUCache(maxsize=256 if keep else 0)
        # What one finished evaluation alone determines (its parsed summary, its instance values):
        # it never changes, so a new result costs one evaluation's reads, not the whole board's.
        self.per_evaluation = LRUCache(maxsize=50_000 if keep else 0)
        self.fingerprints: dict[tuple[str, str], tuple[float, tuple]] = {}


def init_app(app: Flask) -> Engine:
    """Create the app's engine from ``DATABASE_URL`` (default: :func:`evaluator.store.database_url`);
    ``LEADERBOARD_CACHE`` (default: the PHASEBENCH_LEADERBOARD_CACHE setting) turns the in-process
    caches on or off."""
    url = app.config.get("DATABASE_URL") or database_url()
    app.config["DATABASE_URL"] = url
    engine = make_engine(url)
    keep = app.config.get("LEADERBOARD_CACHE")
    app.extensions[EXTENSION] = _State(engine, get_settings().leaderboard_cache if keep is None else bool(keep))
    return engine


def _state() -> _State:
    return current_app.extensions[EXTENSION]


def get_engine() -> Engine:
    return _state().engine


def get_store() -> ResultsStore:
    return _state().store


def cache() -> LRUCache:
    """This app's in-process cache (derived data only; keys carry what they depend on)."""
    return _state().cache


def per_evaluation() -> LRUCache:
    """This app's cache of what a finished evaluation (or a pair of them) alone determines: it
    never changes, so it outlives the boards it was computed for."""
    return _state().per_evaluation


def ensure_schema() -> None:
    """Raise SchemaOutOfDate (once, until it passes) if the database is not at the code's schema."""
    state = _state()
    if not state.schema_checked:
        require_current(state.engine)
        state.schema_checked = True


def _session() -> Session:
    return Session(bind=get_engine(), expire_on_commit=False)


# --- reads -------------------------------------------------------------------------------------
# What a board row never reads from its evaluation: the summary is parsed only for the rows a page
# shows (prefetch_summaries, one query), provenance only on an evaluation's own page. Raising on
# access keeps a per-row query from creeping back into a page of 1,000 rows.
_NOT_ON_BOARDS = (Evaluation.metrics, Evaluation.hardware, Evaluation.library_versions, Evaluation.sandbox_info,
                  Evaluation.note)


def latest_finished(task: str, split: str) -> list[LeaderboardRow]:
    """The newest finished (complete/partial) evaluation of each submission name, newest first
    (as :meth:`ResultsStore.latest_finished`). One query picks them by id and name alone; the
    rows themselves are read once per app (a finished evaluation and its submission never
    change), those not read yet in one more query."""
    q = (select(Evaluation.id, Submission.name).join(Submission)
         .where(Evaluation.task == task, Evaluation.split == split, Evaluation.status.in_(FINISHED))
         .order_by(Evaluation.id.desc()))
    newest: dict[str, int] = {}
    with get_engine().connect() as conn:
        for ev_id, name in conn.execute(q):
            newest.setdefault(name, ev_id)
    per_evaluation = _state().per_evaluation
    rows = {ev_id: per_evaluation.get(("row", ev_id)) for ev_id in newest.values()}
    missing = [ev_id for ev_id, row in rows.items() if row is None]
    for start in range(0, len(missing), 1000):
        with _session() as s:
            for ev, sub in s.execute(select(Evaluation, Submission).join(Submission)
                                     .options(*(defer(c, raiseload=True) for c in _NOT_ON_BOARDS))
                                     .where(Evaluation.id.in_(missing[start:start + 1000]))):
                rows[ev.id] = LeaderboardRow(ev, sub)
                per_evaluation.put(("row", ev.id), rows[ev.id])
    return [row for row in rows.values() if row is not None]


def evaluation(evaluation_id: int) -> Evaluation | None:
    """One evaluation with its submission and instance results loaded (None for an id no row can
    have: past a 32-bit key the database driver would raise instead of finding nothing)."""
    if not 0 < evaluation_id < 2**31:
        return None
    return get_store().evaluation(evaluation_id, with_instances=True)


def evaluations_of(name: str) -> list[LeaderboardRow]:
    """Every evaluation (finished or not) of a submission name, newest first."""
    return get_store().evaluations_of(name)


def latest_submission(name: str) -> Submission | None:
    """The newest stored version (by code hash) of a submission name."""
    with _session() as s:
        q = (select(Submission).where(Submission.name == name)
             .order_by(Submission.created_at.desc(), Submission.id.desc()))
        return s.scalars(q).first()



def board_fingerprint(task: str, split: str) -> tuple:
    """A cheap summary that changes whenever the set of finished evaluations of (task, split)
    changes (one indexed aggregate query). Finished evaluations are never rewritten, so cached
    leaderboards keyed by it stay correct. The answer is reused for ``FRESHNESS_S`` seconds
    (app config; default 1 s, 0 when TESTING), so a new result shows up at most that late."""
    import time
    ttl = current_app.config.get("FRESHNESS_S")
    if ttl is None:
        ttl = 0.0 if current_app.testing else 1.0
    if ttl <= 0:
        return get_store().board_fingerprint(task, split)
    state = _state()
    now = time.monotonic()
    hit = state.fingerprints.get((task, split))
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    fp = get_store().board_fingerprint(task, split)
    state.fingerprints[(task, split)] = (now, fp)
    return fp


def board_snapshot(meta: TaskMetadata, split: str, fingerprint: tuple | None) -> BoardSnapshot | None:
    """The evaluator's snapshot of a board when it was computed for ``fingerprint`` (the latest of
    any fingerprint with None), else None."""
    return read_snapshot(get_store(), meta, split, fingerprint)


def _request_summaries() -> dict[int, EvaluationSummary]:
    # With the app's caches off a page still reads each summary it shows once, in one query.
    return g.setdefault("phasebench_summaries", {})


def stored_board(meta: TaskMetadata, split: str, fingerprint: tuple, offset: int = 0, limit: int | None = None,
                 with_overall: bool = False) -> StoredBoard | None:
    """The rows the evaluator stored for this board when built for ``fingerprint`` (else None)."""
    return read_stored_board(get_store(), meta, split, fingerprint, offset, limit, with_overall)


def stored_summary(ev: Evaluation) -> EvaluationSummary:
    """The evaluation's parsed summary, parsed once per app (a finished evaluation's never changes)
    and read from the database when a board row was loaded without it (see prefetch_summaries)."""
    found = _request_summaries().get(ev.id)
    if found is not None:
        return found
    if "metrics" not in inspect(ev).unloaded:
        return _state().per_evaluation.get_or_compute(("summary", ev.id), lambda: summary_of(ev))
    return prefetch_summaries([ev])[ev.id]


def prefetch_summaries(evaluations: list[Evaluation]) -> dict[int, EvaluationSummary]:
    """``{evaluation_id: summary}`` for many evaluations: those neither this request nor the app
    has parsed yet are read in ONE query (per 1,000) and parsed once."""
    per_evaluation, request_scope = _state().per_evaluation, _request_summaries()
    out: dict[int, EvaluationSummary] = {}
    missing: list[int] = []
    for ev in evaluations:
        hit = request_scope.get(ev.id) or per_evaluation.get(("summary", ev.id))
        if hit is None:
            missing.append(ev.id)
        else:
            out[ev.id] = hit
    for start in range(0, len(missing), 1000):
        q = (select(Evaluation.id, Evaluation.metrics, Evaluation.record_format)
             .where(Evaluation.id.in_(missing[start:start + 1000])))
        with get_engine().connect() as conn:
            for ev_id, raw, record_format in conn.execute(q):
                out[ev_id] = EvaluationSummary.from_stored(raw, record_format)
                per_evaluation.put(("summary", ev_id), out[ev_id])
    request_scope.update(out)
    return out


def instance_table(evaluation_ids: list[int], metric: str, meta: TaskMetadata
                   ) -> tuple[dict[int, dict[str, float | None]], dict[str, str]]:
    """``({evaluation_id: {instance_id: value}}, {instance_id: group})`` over the instances that
    count towards the ranking (the task's unranked groups left out). Each evaluation's values are
    read once per app; those not read yet come in ONE query."""
    per_evaluation = _state().per_evaluation
    rows: dict[int, list[tuple[str, str, float | None]]] = {}
    missing = []
    for ev_id in evaluation_ids:
        hit = per_evaluation.get(("instance-values", ev_id, metric))
        if hit is None:
            missing.append(ev_id)
        else:
            rows[ev_id] = hit
    if missing:
        fetched = get_store().instance_values(missing, metric)
        for ev_id, found in fetched.items():
            per_evaluation.put(("instance-values", ev_id, metric), found)
        rows.update(fetched)
    unranked = tuple(meta.unranked_groups)

    def ranked(ev_id: int) -> tuple[dict[str, float | None], dict[str, str]]:
        # the ranked instances' values and groups, also kept per evaluation (shared: not to be modified)
        return per_evaluation.get_or_compute(("ranked-values", ev_id, metric, unranked),
                                             lambda: ranked_instance_values(rows[ev_id], meta))
    return combine_instance_values(evaluation_ids, ranked)


def instance_axes(evaluation_ids: list[int], axes: list[str]) -> dict[int, list[dict]]:
    """``{evaluation_id: [{"instance_id", "group", "status", axis: raw value, ...}]}`` for many
    evaluations in ONE query. An axis is a key of the instance details or ``"metric:<name>"``; the
    database extracts each from its JSON column, so only those scalars cross the wire. Values come
    back as the database gives them (numbers, text or None): the caller decides what is plottable.
    """
    out: dict[int, list[dict]] = {i: [] for i in evaluation_ids}
    if not evaluation_ids:
        return out
    columns = []
    for axis in axes:
        if axis.startswith(METRIC_PREFIX):
            col = InstanceResult.metrics[axis[len(METRIC_PREFIX):]]
        else:
            col = InstanceResult.details[axis]
        # as text: a detail that is not a number (a task's bug) must not make the cast fail in SQL
        columns.append(col.as_string())
    q = (select(InstanceResult.evaluation_id, InstanceResult.instance_id, InstanceResult.group,
                InstanceResult.status, *columns)
         .where(InstanceResult.evaluation_id.in_(evaluation_ids))
         .order_by(InstanceResult.evaluation_id, InstanceResult.instance_id))
    with get_engine().connect() as conn:
        for ev_id, inst, group, status, *values in conn.execute(q):
            out[ev_id].append({"instance_id": inst, "group": group, "status": status, **dict(zip(axes, values))})
    return out
