"""The same queue with Redis as the broker (a URL is all it takes)."""
from __future__ import annotations

import os

import pytest

from .echo_task import echo_submission
from .harness import QueueHarness, broker_problem

REDIS_URL = os.environ.get("PHASEBENCH_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_harness(pg_url, tmp_path):
    problem = broker_problem(REDIS_URL)
    if problem:
        pytest.skip(problem)
    h = QueueHarness(db_url=pg_url, tmp=tmp_path, broker_url=REDIS_URL)
    yield h
    h.close()


def test_a_redis_broker_runs_jobs(redis_harness, echo_data, tmp_path):
    h = redis_harness
    worker = h.start_worker("redis-w")
    h.wait_ready(worker)
    ids = [h.enqueue(echo_submission(tmp_path, name=f"r{i}"), data_dir=echo_data) for i in range(2)]
    jobs = h.wait_jobs(ids, timeout=60)
    assert [(j.state, j.attempts) for j in jobs] == [("done", 1), ("done", 1)]
    assert all(h.results.evaluation(j.evaluation_id).status == "complete" for j in jobs)
