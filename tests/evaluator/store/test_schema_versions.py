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


def test_the_upgrade_to_0007_withholds_a_hidden_splits_small_slices_and_its_stored_boards(db_url):
    """Summaries stored before the evaluator withheld them keep a hidden split's lone-instance slices
    (a rare-behavior F3 group of one: its score, and so its p); the upgrade removes them as the
    evaluator would now, leaves a dev summary whole, and drops the hidden split's stored boards."""
    from sqlalchemy.orm import Session

    from evaluator.store.models import BoardRowStored, Evaluation, InstanceResult, Submission

    engine = make_engine(db_url)
    upgrade(engine, "0006")
    decades = {"F1": -5.0, "F2": -4.0, "F3": -9.0}
    sizes = {"F1": 12, "F2": 6, "F3": 1}
    slice_ = {"n": 1, "quantile_score": 0.25}
    metrics = {"n_instances": 19, "metrics": {},
               "groups": {g: {**slice_, "n": n} for g, n in sizes.items()},
               "breakdowns": {"decade": {str(int(d)): {**slice_, "n": sizes[g]} for g, d in decades.items()}}}
    with Session(engine) as s, s.begin():
        sub = Submission(name="earlier", code_sha256="abc", meta={})
        s.add(sub)
        for split in ("test", "dev"):
            ev = Evaluation(submission=sub, task="rare-behavior-whitebox", task_version=5, split=split,
                            dataset_revision="r", evaluator_version="v", sandbox="none", device="cpu", hardware={},
                            library_versions={}, status="complete", headline_metric="quantile_score",
                            metrics=metrics)
            ev.instances = [InstanceResult(instance_id=f"{g}-{i}", group=g, status="ok", metrics={},
                                           details={"decade": decades[g]})
                            for g, n in sizes.items() for i in range(n)]
            s.add(ev)
            s.add(BoardRowStored(task="rare-behavior-whitebox", task_version=5, split=split, fingerprint="f",
                                 section="current", position=0, row_task_version=5, evaluation_id=None,
                                 payload="{}"))
    upgrade(engine)
    with Session(engine) as s:
        stored = {ev.split: ev.metrics for ev in s.query(Evaluation)}
        boards = sorted(r.split for r in s.query(BoardRowStored))
    assert set(stored["test"]["groups"]) == {"F1"}                       # F3 alone, F2 = overall − F1 − F3
    assert set(stored["test"]["breakdowns"]["decade"]) == {"-5"}
    assert stored["dev"] == metrics
    assert boards == ["dev"]
    engine.dispose()
