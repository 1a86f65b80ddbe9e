"""The queue against the real RabbitMQ and PostgreSQL: parallel workers, a worker killed mid-job,
the broker restarted, the database briefly unreachable. Every job finishes once."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from sqlalchemy.engine import make_url

from .echo_task import echo_submission
from .harness import wait_for
from .tcp_proxy import TcpProxy


def _one_result(harness, job_id: int) -> None:
    """Exactly one counted evaluation for the job's code, and it is the job's."""
    job = harness.jobs.get(job_id)
    assert harness.jobs.finished_evaluations(job_id) == 1
    ev = harness.results.evaluation(job.evaluation_id)
    assert ev.status == "complete" and ev.headline == 0.0


def test_two_workers_drain_the_queue_in_parallel(harness, echo_data, tmp_path):
    workers = [harness.start_worker("alpha"), harness.start_worker("beta")]
    for w in workers:
        harness.wait_ready(w)
    ids = [harness.enqueue(echo_submission(tmp_path, name=f"m{i}", sleep_s=0.6), data_dir=echo_data)
           for i in range(6)]
    jobs = harness.wait_jobs(ids, timeout=60)
    assert {j.state for j in jobs} == {"done"} and {j.attempts for j in jobs} == {1}
    by_worker = {}
    for j in jobs:
        by_worker.setdefault(j.worker.split("#")[0], []).append(j)
        _one_result(harness, j.id)
    assert set(by_worker) == {"alpha", "beta"}
    # In parallel, not taking turns: some job of one ran while a job of the other was running.
    overlaps = [(a.id, b.id) for a in by_worker["alpha"] for b in by_worker["beta"]
                if a.started_at < b.finished_at and b.started_at < a.finished_at]
    assert overlaps


def test_a_worker_killed_mid_job_has_its_job_finished_once_by_another(harness, echo_data, tmp_path):
    workers = {name: harness.start_worker(name) for name in ("alpha", "beta")}
    for w in workers.values():
        harness.wait_ready(w)
    job_id = harness.enqueue(echo_submission(tmp_path, sleep_s=2.5), data_dir=echo_data)
    running = wait_for(lambda: (j := harness.jobs.get(job_id)).evaluation_id and j.state == "running" and j,
                       30, "the job to start its evaluation")
    victim = running.worker.split("#")[0]
    workers[victim].kill()          # SIGKILL to the worker and its pool: a lost machine
    [job] = harness.wait_jobs([job_id], timeout=60)
    assert job.state == "done" and job.attempts == 2
    assert job.worker.split("#")[0] != victim
    _one_result(harness, job_id)
    first = harness.results.evaluation(running.evaluation_id)
    assert first.status == "interrupted" and "attempt 1 stopped" in first.note
    assert {row.evaluation.status for row in harness.results.evaluations_of("echo-method")} == \
        {"interrupted", "complete"}


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl is not installed here")
def test_jobs_queued_across_a_broker_restart_all_finish_once(harness, echo_data, tmp_path):
    worker = harness.start_worker("alpha")
    harness.wait_ready(worker)
    running = harness.enqueue(echo_submission(tmp_path, name="slow", sleep_s=4), data_dir=echo_data)
    wait_for(lambda: harness.jobs.get(running).evaluation_id, 30, "the first job to start")
    queued = [harness.enqueue(echo_submission(tmp_path, name=f"m{i}"), data_dir=echo_data) for i in range(3)]
    try:
        _rabbitmqctl("stop_app")   # the broker goes down with one job running and three queued
    finally:
        _rabbitmqctl("start_app")
    _rabbitmqctl("await_startup")
    jobs = harness.wait_jobs([running, *queued], timeout=90)
    assert {j.state for j in jobs} == {"done"}
    for j in jobs:
        _one_result(harness, j.id)


def test_a_briefly_unreachable_database_delays_the_job_and_it_finishes_once(harness, echo_data, tmp_path):
    pg = make_url(harness.db_url)
    with TcpProxy(pg.host or "127.0.0.1", pg.port or 5432) as proxy:
        through_proxy = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        worker = harness.start_worker("alpha", db_url=through_proxy)
        harness.wait_ready(worker)
        job_id = harness.enqueue(echo_submission(tmp_path, sleep_s=1.5), data_dir=echo_data)
        wait_for(lambda: harness.jobs.get(job_id).evaluation_id, 30, "the job to start its evaluation")
        proxy.cut()                 # the method is still running: its result cannot be stored
        time.sleep(3)
        assert harness.jobs.get(job_id).state != "done"
        proxy.start()
        [job] = harness.wait_jobs([job_id], timeout=60)
    assert job.state == "done" and job.attempts >= 2
    assert "infrastructure failure" in (job.reason or "") and "not counted against the submission" in job.reason
    _one_result(harness, job_id)
    statuses = [row.evaluation.status for row in harness.results.evaluations_of("echo-method")]
    assert statuses.count("complete") == 1 and set(statuses) <= {"complete", "failed", "interrupted"}


def test_a_gpu_worker_runs_one_job_per_gpu_pinned_to_it(harness, echo_data, tmp_path):
    seen = tmp_path / "seen"
    seen.mkdir()
    record = (f"open(os.path.join({str(seen)!r}, problem['instance_id'] + '-' + str(os.getpid())), 'w')"
              ".write(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))")
    worker = harness.start_worker("gpubox", "--gpus", "3,5")
    harness.wait_ready(worker)
    ids = [harness.enqueue(echo_submission(tmp_path, name=f"g{i}", sleep_s=1.0, extra=record),
                           data_dir=echo_data, device="cuda") for i in range(2)]
    jobs = harness.wait_jobs(ids, timeout=60)
    assert {j.state for j in jobs} == {"done"} and {j.device for j in jobs} == {"cuda"}
    assert sorted(p.read_text() for p in seen.iterdir()) == ["3", "5"]
    assert sorted(j.worker for j in jobs) == ["gpubox#slot0/gpu3", "gpubox#slot1/gpu5"]
