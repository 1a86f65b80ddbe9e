"""The store on SQLite and on the real PostgreSQL server."""
import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from evaluator.results.summary import EvaluationSummary
from evaluator.store import (EvaluationStatus, ResultsStore, SchemaOutOfDate, current_revision, head_revision,
                             make_engine, require_current, session_scope, upgrade)
from evaluator.store.models import Submission

EVAL_FIELDS = dict(task="planted-features", task_version=1, split="dev", dataset_revision="sha256:" + "0" * 64,
                   evaluator_version="0.1.0", sandbox="bwrap", device="cpu", hardware={"cores": 2},
                   library_versions={"numpy": "2"}, headline_metric="recall@0.9")


def _summary(value: float) -> EvaluationSummary:
    return EvaluationSummary.for_storage(
        {"n_instances": 2, "metrics": {"recall@0.9": {"value": value, "ci_low": value - 0.1, "ci_high": value + 0.1}},
         "groups": {"T1": {"n": 2, "recall@0.9": value}}})


def test_round_trip(store):
    sub_id = store.upsert_submission("sae", "a" * 64, "abc123", {"name": "sae", "baseline": True})
    assert store.upsert_submission("sae", "a" * 64, "abc123", {}) == sub_id
    ev_id = store.start_evaluation(submission_id=sub_id, **EVAL_FIELDS)
    store.add_instance_result(ev_id, instance_id="i0", group="T1", status="ok", metrics={"recall@0.9": 1.0},
                              runtime_s=0.5, error=None)
    store.add_instance_result(ev_id, instance_id="i1", group="T1", status="timeout", metrics={"recall@0.9": 0.0},
                              runtime_s=9.0, error="wall-time limit of 9 s exceeded")
    assert store.find_finished("a" * 64, "planted-features", 1, "dev", EVAL_FIELDS["dataset_revision"], "bwrap") is None
    store.finish_evaluation(ev_id, EvaluationStatus.PARTIAL, _summary(0.5), "recall@0.9", 1, 9.5)
    ev = store.evaluation(ev_id, with_instances=True)
    assert ev.status == "partial" and ev.headline == 0.5 and ev.headline_ci_low == pytest.approx(0.4)
    assert ev.metrics["groups"]["T1"]["n"] == 2 and ev.hardware == {"cores": 2}
    assert [i.instance_id for i in ev.instances] == ["i0", "i1"]
    assert ev.instances[1].error.startswith("wall-time") and ev.submission.meta["baseline"] is True
    found = store.find_finished("a" * 64, "planted-features", 1, "dev", EVAL_FIELDS["dataset_revision"], "bwrap")
    assert found.id == ev_id
    assert store.find_finished("a" * 64, "planted-features", 2, "dev", EVAL_FIELDS["dataset_revision"], "bwrap") is None
    assert store.find_finished("a" * 64, "planted-features", 1, "dev", EVAL_FIELDS["dataset_revision"], "docker") is None
    [row] = store.latest_finished("planted-features", "dev")
    assert row.submission.name == "sae"


def test_a_failed_transaction_writes_nothing(store):
    with pytest.raises(RuntimeError):
        with session_scope(store.engine) as s:
            s.add(Submission(name="half", code_sha256="b" * 64, meta={}))
            s.flush()
            raise RuntimeError("crash between two writes")
    assert store.evaluations_of("half") == []
    with session_scope(store.engine) as s:
        assert s.query(Submission).filter_by(name="half").count() == 0


def test_an_instance_is_stored_once(store):
    sub_id = store.upsert_submission("x", "c" * 64, None, {})
    ev_id = store.start_evaluation(submission_id=sub_id, **EVAL_FIELDS)
    store.add_instance_result(ev_id, instance_id="i0", group="T1", status="ok", metrics={}, runtime_s=1, error=None)
    with pytest.raises(IntegrityError):
        store.add_instance_result(ev_id, instance_id="i0", group="T1", status="ok", metrics={}, runtime_s=1, error=None)
    assert len(store.evaluation(ev_id, with_instances=True).instances) == 1


def test_migrations_reach_head_and_guard_old_schemas(db_url):
    engine = make_engine(db_url)
    with pytest.raises(SchemaOutOfDate, match="phasebench db upgrade"):
        require_current(engine)
    assert upgrade(engine) == head_revision() == current_revision(engine)
    require_current(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"submissions", "evaluations", "instance_results", "alembic_version"} <= tables
    engine.dispose()


def test_upgrade_from_the_first_schema_keeps_the_results(db_url):
    engine = make_engine(db_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO submissions (name, code_sha256, metadata, created_at) "
                             "VALUES ('old', 'd', '{}', CURRENT_TIMESTAMP)")
    assert upgrade(engine) == head_revision()
    store = ResultsStore(engine)
    sub_id = store.upsert_submission("old", "d", None, {})
    ev_id = store.start_evaluation(submission_id=sub_id, sandbox_info={"image_id": "sha256:abc"}, **EVAL_FIELDS)
    assert store.evaluation(ev_id).sandbox_info == {"image_id": "sha256:abc"}
    engine.dispose()
