"""Alembic migrations, driven from code so that no alembic.ini has to sit in the working folder."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Engine

__all__ = ["alembic_config", "upgrade", "current_revision", "head_revision", "SchemaOutOfDate"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(RuntimeError):
    pass


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> str:
    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except CommandError as exc:
        # Typically a revision this code does not know: the database was written by newer code.
        raise SchemaOutOfDate(f"the results database cannot be migrated: {exc} (this code knows revisions up to "
                              f"{head_revision()}; a newer PhaseBench wrote it?)") from None
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


def require_current(engine: Engine) -> None:
    cur, head = current_revision(engine), head_revision()
    if cur != head:
        raise SchemaOutOfDate(
            f"the results database is at schema revision {cur or 'none'}, the code expects {head}: "
            "run `phasebench db upgrade`")
