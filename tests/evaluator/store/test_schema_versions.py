"""A database at an older schema: the evaluator refuses to write to it, the migrations bring it up."""
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from benchmark.task import get_task
from evaluator.cli import main
from evaluator.runner import evaluate_submission
from evaluator.sandbox import get_sandbox
from evaluator.store import ResultsStore, SchemaOutOfDate, current_revision, head_revision, make_engine, upgrade
from evaluator.submission import load_submission
from tests.builders import build_tiny_split, write_submission


@pytest.mark.parametrize("old", ["0001", "0002", "0003"])
def test_evaluator_refuses_an_old_schema_then_the_upgrade_keeps_its_rows(tmp_path, old):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    upgrade(engine, old)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO submissions (name, code_sha256, metadata, created_at) "
                          "VALUES ('earlier', 'abc', '{}', '2025-01-01')"))
    split = build_tiny_split(tmp_path / "data", n_instances=1)
    sub = load_submission(write_submission(tmp_path / "subs"))
    with pytest.raises(SchemaOutOfDate, match=f"schema revision {old}.*phasebench db upgrade"):
        evaluate_submission(sub, get_task("planted-features"), split, get_sandbox("none"), ResultsStore(engine))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM submissions")).scalar() == 1  # nothing written

    result = CliRunner().invoke(main, ["db", "upgrade", "--db", url])
    assert result.exit_code == 0, result.output
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM submissions")).scalars().all() == ["earlier"]
    engine.dispose()


def test_a_database_from_newer_code_is_refused_clearly(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", url])
    assert result.exit_code != 0
    assert "9999" in result.output and "Traceback" not in result.output
    engine.dispose()
