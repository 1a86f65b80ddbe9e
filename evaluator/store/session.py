"""The one module that owns database engines and sessions for the evaluator and the website."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from benchmark.settings import default_of, get_settings

__all__ = ["DEFAULT_DB_URL", "database_url", "make_engine", "session_scope", "redact", "RowMissing", "get_row"]

DEFAULT_DB_URL: str = default_of("db")


def database_url(url: str | None = None) -> str:
    """The URL given, else $PHASEBENCH_DB, else a SQLite file under ./var/."""
    return url or get_settings().db


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str | None = None) -> Engine:
    url = database_url(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # WAL lets the website read while the evaluator writes; foreign keys are off by default.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error (no partial writes)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


Row = TypeVar("Row")


class RowMissing(LookupError):
    """A row that the caller holds the id of is not in the database (deleted, or another database)."""


def get_row(session: Session, model: type[Row], row_id: int, **options: Any) -> Row:
    """``session.get`` for a row that must exist: a missing one is an error naming it, not a None
    that fails later on an attribute."""
    row = session.get(model, row_id, **options)
    if row is None:
        raise RowMissing(f"no {getattr(model, '__tablename__', model.__name__)} row with id {row_id}")
    return row
