"""One job's life without the broker: what execute_job does with each kind of failure and with
what an earlier attempt left behind (SQLite and the real PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from evaluator.queue import QueueConfig, execute_job
from evaluator.results.summary import EvaluationSummary
from evaluator.sandbox import NoSandbox, SandboxError
from evaluator.store import EvaluationStatus, ResultsStore, make_engine, session_scope, upgrade
from evaluator.store.jobs import JobStore
from evaluator.store.models import Job, JobState
from evaluator.submission import load_submission

from .echo_task import ECHO_TASK, build_echo_split, echo_submission


@pytest.fixture
def env(db_url, tmp_path):
    engine = make_engine(db_url)
    upgrade(engine)
    data = tmp_path / "data"
    build_echo_split(data)
    config = QueueConfig(db_url=db_url, queue_prefix="unit", max_attempts=3)
    yield config, JobStore(engine), ResultsStore(engine), data, tmp_path
    engine.dispose()


def _job(jobs: JobStore, folder, data, force: bool = False, **overrides) -> int:
    """A job row as enqueue wrote them before the request was stored (options without a format):
    such rows stay readable (tests/evaluator/queue/test_job_request.py has the stored request)."""
    sub = load_submission(folder)
    fields = dict(message_id=f"m-{folder.name}-{force}", queue="unit.cpu", submission_name=sub.name,
                  submission_dir=str(folder), code_sha256=sub.code_sha256, task=ECHO_TASK, split="dev",
                  sandbox="none", device="cpu", force=force,
                  options={"data_dir": str(data), "private_dir": None, "limits": {}})
    fields.update(overrides)
    return jobs.create(**fields).id


def _evaluations(results: ResultsStore, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in results.evaluations_of(name):
        out[row.evaluation.status] = out.get(row.evaluation.status, 0) + 1
    return out


def test_a_job_is_evaluated_and_a_repeated_delivery_adds_nothing(env):
    config, jobs, results, data, tmp = env
    job_id = _job(jobs, echo_submission(tmp), data)
    first = execute_job(job_id, config, "w#0")
    assert first.state == "done"
    job = jobs.get(job_id)
    assert (job.state, job.attempts, job.worker, job.evaluation_id) == ("done", 1, "w#0", first.evaluation_id)
    ev = results.evaluation(first.evaluation_id)
    assert ev.status == EvaluationStatus.COMPLETE and ev.headline == 0.0
    again = execute_job(job_id, config, "w#1")  # the broker delivered the message twice
    assert again.state == "skipped" and jobs.get(job_id).attempts == 1
    assert _evaluations(results, "echo-method") == {"complete": 1}


def test_a_method_failure_is_the_evaluations_result_not_a_job_failure(env):
    config, jobs, results, data, tmp = env
    folder = echo_submission(tmp, extra="raise ValueError('the method is broken')")
    result = execute_job(_job(jobs, folder, data), config, "w#0")
    assert result.state == "done"
    ev = results.evaluation(result.evaluation_id, with_instances=True)
    assert ev.status == EvaluationStatus.PARTIAL and ev.n_failed == 1 and ev.headline == 1.0  # the worst value
    assert ev.instances[0].status == "error" and "the method is broken" in ev.instances[0].error


def test_a_job_that_cannot_run_as_given_fails_with_its_reason(env):
    config, jobs, results, data, tmp = env
    folder = echo_submission(tmp)
    changed = _job(jobs, folder, data)
    (folder / "method.py").write_text((folder / "method.py").read_text() + "\n# edited after enqueue\n")
    result = execute_job(changed, config, "w#0")
    assert result.state == "failed" and "code changed since it was enqueued" in jobs.get(changed).reason
    missing = _job(jobs, echo_submission(tmp, name="other"), tmp / "no-such-data")
    execute_job(missing, config, "w#0")
    job = jobs.get(missing)
    assert job.state == JobState.FAILED and "data for queue-echo/dev" in job.reason
    assert results.evaluations_of("other") == []


def test_an_infrastructure_failure_is_raised_for_a_retry_and_never_counts(env, monkeypatch):
    config, jobs, results, data, tmp = env
    job_id = _job(jobs, echo_submission(tmp), data)

    def broken(self, job):
        raise SandboxError("bwrap: cannot create a user namespace")
    monkeypatch.setattr(NoSandbox, "run", broken)
    with pytest.raises(SandboxError):
        execute_job(job_id, config, "w#0")
    job = jobs.get(job_id)
    assert job.state == "running" and job.evaluation_id is not None  # the Celery task requeues it
    assert results.evaluation(job.evaluation_id).status == EvaluationStatus.FAILED  # not a result
    monkeypatch.undo()
    result = execute_job(job_id, config, "w#1")
    assert result.state == "done" and jobs.get(job_id).attempts == 2
    assert _evaluations(results, "echo-method") == {"failed": 1, "complete": 1}


def test_an_evaluation_a_dead_worker_left_running_is_interrupted_and_never_finished(env):
    config, jobs, results, data, tmp = env
    job_id = _job(jobs, echo_submission(tmp), data, force=True)
    # Attempt 1 started its evaluation, then its worker was killed: the row says 'running'.
    job = jobs.claim(job_id, "w#0")
    sub = load_submission(tmp / "echo-method")
    stale = results.start_evaluation(
        submission_id=results.upsert_submission(sub.name, sub.code_sha256, None, {}), task=ECHO_TASK,
        task_version=1, split="dev", dataset_revision="x", evaluator_version="0", sandbox="none",
        device="cpu", hardware={}, library_versions={}, headline_metric="error")
    jobs.record_evaluation(job.id, stale)
    result = execute_job(job_id, config, "w#1")   # the redelivered message
    assert result.state == "done" and result.evaluation_id != stale
    old = results.evaluation(stale)
    assert old.status == EvaluationStatus.INTERRUPTED and "attempt 1 stopped" in old.note
    # The killed worker's process, had it survived, cannot finish (and so count) its row now.
    from evaluator.store.repository import EvaluationSuperseded
    summary = EvaluationSummary.for_storage(
        {"n_instances": 1, "metrics": {"error": {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}}, "groups": {}})
    with pytest.raises(EvaluationSuperseded):
        results.finish_evaluation(stale, EvaluationStatus.COMPLETE, summary, "error", 0, 1.0)
    assert _evaluations(results, "echo-method") == {"interrupted": 1, "complete": 1}


def test_an_attempt_that_finished_but_was_not_acknowledged_is_not_run_again(env):
    config, jobs, results, data, tmp = env
    job_id = _job(jobs, echo_submission(tmp), data, force=True)
    first = execute_job(job_id, config, "w#0")
    # The worker stored the result and died before it marked the job done and acknowledged it.
    with session_scope(jobs.engine) as s:
        s.execute(update(Job).where(Job.id == job_id).values(state=JobState.RUNNING))
    again = execute_job(job_id, config, "w#1")
    assert (again.state, again.evaluation_id) == ("done", first.evaluation_id)
    assert _evaluations(results, "echo-method") == {"complete": 1}


def test_a_job_whose_attempts_keep_dying_is_given_up(env):
    config, jobs, results, data, tmp = env
    job_id = _job(jobs, echo_submission(tmp), data)
    for _ in range(config.max_attempts):
        jobs.claim(job_id, "w#0")  # each attempt's worker died
    result = execute_job(job_id, config, "w#1")
    assert result.state == "failed" and "gave up after 3 attempts" in jobs.get(job_id).reason


def test_queue_positions_follow_the_order_of_enqueueing(env):
    config, jobs, results, data, tmp = env
    ids = [_job(jobs, echo_submission(tmp, name=f"m{i}"), data) for i in range(3)]
    assert [jobs.position(jobs.get(i)) for i in ids] == [1, 2, 3]
    jobs.claim(ids[0], "w#0")
    views = {v.job.id: v for v in jobs.list()}
    assert [views[i].position for i in ids] == [None, 1, 2]
    assert views[ids[0]].to_json()["state"] == "running" and jobs.counts() == {"running": 1, "queued": 2}
