"""The website connects to PostgreSQL as the read-only role of leaderboard/readonly_role.sql: every
page renders, and a write through the same connection is refused."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from evaluator.store import make_engine, upgrade
from leaderboard import create_app
from tests.builders import PG_ADMIN_URL

from .conftest import make_evaluation

pytestmark = pytest.mark.postgres

SQL = Path(__file__).resolve().parents[2] / "leaderboard" / "readonly_role.sql"


def _statements(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@pytest.fixture
def pg_readonly():
    admin = make_url(PG_ADMIN_URL)
    try:
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server answers at {admin.render_as_string()}: {type(e).__name__}")
    suffix = uuid.uuid4().hex[:10]
    dbname, role = f"phasebench_ro_{suffix}", f"phasebench_web_{suffix}"
    with eng.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    db_url = admin.set(database=dbname)
    owner = make_engine(db_url.render_as_string(hide_password=False))
    try:
        upgrade(owner)
        make_evaluation(owner, name="sub-a", headline=0.7)
        ev = make_evaluation(owner, name="sub-b", headline=0.4)
        with owner.begin() as conn:
            for stmt in _statements(SQL.read_text().replace("phasebench_web", role)):
                conn.execute(text(stmt))
        yield db_url.set(username=role, password=None).render_as_string(hide_password=False), ev
    finally:
        owner.dispose()
        with eng.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        eng.dispose()


def test_site_runs_as_readonly_role(pg_readonly):
    url, ev = pg_readonly
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    client = app.test_client()
    try:
        for path in ["/", "/tasks/planted-features", f"/evaluations/{ev}", "/submissions/sub-a",
                     f"/compare?a={ev}&b={ev - 1}", "/api/v1/tasks/planted-features/leaderboard",
                     "/api/v1/overall", "/tasks/planted-features/leaderboard.csv"]:
            r = client.get(path)
            assert r.status_code == 200, (path, r.get_data(as_text=True)[:500])
        assert [r["submission"] for r in
                client.get("/api/v1/tasks/planted-features/leaderboard").get_json()["rows"]] == ["sub-a", "sub-b"]
        engine = app.extensions["phasebench_db"].engine
        assert engine.url.username.startswith("phasebench_web_")
        with engine.connect() as conn:
            with pytest.raises(DBAPIError) as err:
                conn.execute(text("INSERT INTO submissions (name, code_sha256, metadata, created_at) "
                                  "VALUES ('x', 'y', '{}', now())"))
            assert "read-only" in str(err.value) or "permission denied" in str(err.value)
            conn.rollback()
            conn.execute(text("SET TRANSACTION READ WRITE"))   # even outside read-only mode,
            with pytest.raises(DBAPIError) as err:            # the role has no INSERT privilege
                conn.execute(text("INSERT INTO submissions (name, code_sha256, metadata, created_at) "
                                  "VALUES ('x', 'y', '{}', now())"))
            assert "permission denied" in str(err.value)
    finally:
        app.extensions["phasebench_db"].engine.dispose()
