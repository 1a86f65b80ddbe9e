"""The one place the website gets its database engine and reads results.

The engine is created once per application (``create_app``) and kept on ``app.extensions``; every
read goes through the :class:`~evaluator.store.ResultsStore` built on it or through the read-only
helpers here. The website never writes.
"""
from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from evaluator.store import (Evaluation, LeaderboardRow, ResultsStore, Submission, database_url,
                             make_engine, require_current)

__all__ = ["EXTENSION", "init_app", "get_engine", "get_store", "ensure_schema", "evaluation",
           "latest_finished", "evaluations_of", "latest_submission"]

EXTENSION = "phasebench_db"


class _State:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store = ResultsStore(engine)
        self.schema_checked = False


def init_app(app: Flask) -> Engine:
    """Create the app's engine from ``DATABASE_URL`` (default: :func:`evaluator.store.database_url`)."""
    url = app.config.get("DATABASE_URL") or database_url()
    app.config["DATABASE_URL"] = url
    engine = make_engine(url)
    app.extensions[EXTENSION] = _State(engine)
    return engine


def _state() -> _State:
    return current_app.extensions[EXTENSION]


def get_engine() -> Engine:
    return _state().engine


def get_store() -> ResultsStore:
    return _state().store


def ensure_schema() -> None:
    """Raise SchemaOutOfDate (once, until it passes) if the database is not at the code's schema."""
    state = _state()
    if not state.schema_checked:
        require_current(state.engine)
        state.schema_checked = True


def _session() -> Session:
    return Session(bind=get_engine(), expire_on_commit=False)


# --- reads -------------------------------------------------------------------------------------
def latest_finished(task: str, split: str) -> list[LeaderboardRow]:
    """The newest finished (complete/partial) evaluation of each submission name."""
    return get_store().latest_finished(task, split)


def evaluation(evaluation_id: int) -> Evaluation | None:
    """One evaluation with its submission and instance results loaded."""
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

