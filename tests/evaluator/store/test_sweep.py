"""`phasebench sweep`: jobs and evaluations that outlived their worker are given up, nothing else,
on SQLite and on the real PostgreSQL server."""
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from evaluator.cli import main
from evaluator.store import EvaluationStatus, session_scope
from evaluator.store.jobs import JobStore
from evaluator.store.models import Evaluation, Job, JobState

from .test_store import EVAL_FIELDS

NOW = datetime.now(timezone.utc)


def _age(store, model, row_id: int, hours: float, field: str) -> None:
    with session_scope(store.engine) as s:
        setattr(s.get(model, row_id), field, NOW - timedelta(hours=hours))


def _job(jobs: JobStore, name: str, state: str, hours: float, evaluation_id: int | None = None) -> int:
    job = jobs.create(message_id=f"m-{name}", queue="q.cpu", submission_name=name, submission_dir="/x",
                      code_sha256="a" * 64, task="planted-features", split="dev", sandbox="bwrap", device="cpu",
                      force=False, options={})
    with session_scope(jobs.engine) as s:
        row = s.get(Job, job.id)
        row.state, row.evaluation_id = state, evaluation_id
        row.enqueued_at = NOW - timedelta(hours=hours + 1)
        if state == JobState.RUNNING:
            row.started_at = NOW - timedelta(hours=hours)
    return job.id


@pytest.fixture
def scene(store):
    """Old and fresh jobs and evaluations in every state the sweep must tell apart."""
    jobs = JobStore(store.engine)
    sub = store.upsert_submission("m", "a" * 64, None, {})
    ev = {name: store.start_evaluation(submission_id=sub, **EVAL_FIELDS) for name in
          ("of_lost_job", "of_live_job", "orphan_old", "orphan_new", "finished_old")}
    for name, hours in [("of_lost_job", 30), ("of_live_job", 30), ("orphan_old", 30), ("orphan_new", 1),
                        ("finished_old", 30)]:
        _age(store, Evaluation, ev[name], hours, "started_at")
    store.mark(ev["finished_old"], EvaluationStatus.COMPLETE, "")
    ids = {"lost": _job(jobs, "lost", JobState.RUNNING, 30, ev["of_lost_job"]),
           "live": _job(jobs, "live", JobState.RUNNING, 1),
           "retrying": _job(jobs, "retrying", JobState.QUEUED, 30, ev["of_live_job"]),
           "queued_old": _job(jobs, "queued_old", JobState.QUEUED, 50),
           "done_old": _job(jobs, "done_old", JobState.DONE, 30)}
    return store, jobs, ids, ev


def _states(store, jobs, ids, ev):
    return ({k: jobs.get(v).state for k, v in ids.items()},
            {k: store.evaluation(v).status for k, v in ev.items()})


def test_sweep_gives_up_on_the_lost_and_only_those(scene):
    store, jobs, ids, ev = scene
    before = _states(store, jobs, ids, ev)
    planned = jobs.sweep(NOW - timedelta(hours=12), dry_run=True)
    assert _states(store, jobs, ids, ev) == before, "a dry run changes nothing"
    swept = jobs.sweep(NOW - timedelta(hours=12))
    assert [(r.kind, r.id) for r in swept] == [(r.kind, r.id) for r in planned]
    job_states, ev_states = _states(store, jobs, ids, ev)
    assert job_states == {"lost": "failed", "live": "running", "retrying": "queued", "queued_old": "queued",
                          "done_old": "done"}
    assert ev_states == {"of_lost_job": "interrupted", "of_live_job": "running", "orphan_old": "interrupted",
                         "orphan_new": "running", "finished_old": "complete"}
    lost = jobs.get(ids["lost"])
    assert lost.reason.startswith("lost: running since ") and "phasebench sweep" in lost.reason
    assert "never finished" in store.evaluation(ev["orphan_old"]).note
    assert jobs.claim(ids["lost"], "late-worker") is None, "a message arriving later does nothing"
    assert jobs.sweep(NOW - timedelta(hours=12)) == [], "a second sweep finds nothing"
    queued = jobs.sweep(NOW - timedelta(hours=12), queued_before=NOW - timedelta(hours=40))
    assert [(r.kind, r.id, r.was) for r in queued] == [("job", ids["queued_old"], "queued")]


def test_sweep_command(scene, db_url):
    store, jobs, ids, ev = scene
    run = CliRunner()
    out = run.invoke(main, ["sweep", "--running-hours", "12", "--dry-run", "--db", db_url])
    assert out.exit_code == 0 and "would give up on 1 job(s) and 2 evaluation(s)" in out.output
    assert f"job {ids['lost']}: running since" in out.output and jobs.get(ids["lost"]).state == "running"
    out = run.invoke(main, ["sweep", "--running-hours", "12", "--queued-hours", "40", "--db", db_url])
    assert out.exit_code == 0 and "gave up on 2 job(s) and 2 evaluation(s)" in out.output
    assert jobs.get(ids["queued_old"]).state == "failed"
    out = run.invoke(main, ["sweep", "--db", db_url])
    assert out.exit_code == 2 and "--running-hours" in out.output
    out = run.invoke(main, ["sweep", "--running-hours", "0", "--db", db_url])
    assert out.exit_code == 2 and "Invalid value for '--running-hours'" in out.output
