"""Fixtures for the job-queue tests: the real RabbitMQ broker and a fresh PostgreSQL database."""
from __future__ import annotations

import pytest

from evaluator.store import make_engine, upgrade
from tests.conftest import _drop_postgres, _postgres_url

from tests.builders import registered

from .echo_task import EchoTask, build_echo_split
from .harness import QueueHarness, broker_problem


@pytest.fixture(autouse=True)
def echo_task():
    """queue-echo registered in this process for one test (workers register it themselves)."""
    with registered(EchoTask()) as name:
        yield name


@pytest.fixture(scope="session")
def broker_url() -> str:
    problem = broker_problem()
    if problem:
        pytest.skip(problem)
    from .harness import BROKER_URL
    return BROKER_URL


@pytest.fixture
def pg_url() -> str:
    url = _postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL server answers (PHASEBENCH_TEST_PG_URL)")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    _drop_postgres(url)


@pytest.fixture
def echo_data(tmp_path):
    """The queue-echo dev split (one instance) under tmp_path/data."""
    root = tmp_path / "data"
    build_echo_split(root)
    return root


@pytest.fixture
def harness(broker_url, pg_url, tmp_path):
    h = QueueHarness(db_url=pg_url, tmp=tmp_path, broker_url=broker_url)
    yield h
    h.close()
