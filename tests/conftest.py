"""Shared fixtures; the builders they use live in tests/builders.py."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _apply_reference_build_env() -> None:
    """Before numpy and torch load, so that the dev splits built here match their pins on any
    x86-64 (benchmark/build_env.py says why). Loaded by path: importing the benchmark package
    would load numpy first."""
    spec = importlib.util.spec_from_file_location(
        "_phasebench_build_env", Path(__file__).resolve().parent.parent / "benchmark" / "build_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if "numpy" not in sys.modules:
        module.apply_reference_env()


_apply_reference_build_env()

import uuid  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmark.dataset import PACKAGE_DATA, open_split, verify_split  # noqa: E402
from benchmark.task import get_task  # noqa: E402
from evaluator.store import ResultsStore, make_engine, upgrade  # noqa: E402
from tests.builders import PG_ADMIN_URL, build_tiny_split  # noqa: E402

EMBEDDED_DATA = PACKAGE_DATA / "phasebench"


@pytest.fixture
def tiny_split(tmp_path):
    return build_tiny_split(tmp_path / "data")


@pytest.fixture(scope="session")
def dev_split_of(tmp_path_factory):
    """The real dev split of a registered task: the embedded copy when it verifies against its
    committed manifest (`make test` runs `make data` first, and a second build of every task would
    double the suite's time), otherwise built once per session into one shared folder, so that
    PHASEBENCH_DATA can point at every task's split at once. A task whose dev files are committed
    (``dev_split_committed``) is never rebuilt here: files that do not verify fail the test."""
    built = {}
    shared: list[Path] = []

    def build(name: str):
        if name not in built:
            problems = verify_split(name, "dev", EMBEDDED_DATA)
            if not problems:
                built[name] = open_split(name, "dev", EMBEDDED_DATA)
            elif get_task(name).dev_split_committed:
                pytest.fail(f"{name}: the committed dev files do not verify ({problems[0]}; {len(problems)} "
                            f"problems): restore them (git checkout) or rebuild them with `phasebench data build "
                            f"--task {name} --force` and commit them with the new pin")
            else:
                if not shared:
                    shared.append(tmp_path_factory.mktemp("dev-data"))
                task = get_task(name)
                task.build("dev", None, shared[0], shared[0])
                built[name] = open_split(name, "dev", shared[0])
        return built[name]
    return build


@pytest.fixture(scope="session")
def dev_split(dev_split_of):
    """The real dev split of planted-features."""
    return dev_split_of("planted-features")


def _postgres_url() -> str | None:
    """A fresh database on the real server, or None when no server answers."""
    admin = make_url(PG_ADMIN_URL)
    try:
        eng = create_engine(admin, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            name = f"phasebench_test_{uuid.uuid4().hex[:12]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
    except Exception:
        return None
    return admin.set(database=name).render_as_string(hide_password=False)


def _drop_postgres(url: str) -> None:
    admin = make_url(PG_ADMIN_URL)
    name = make_url(url).database
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.sqlite'}"
        return
    url = _postgres_url()
    if url is None:
        pytest.skip(f"no PostgreSQL server answers at {make_url(PG_ADMIN_URL).render_as_string()}")
    yield url
    _drop_postgres(url)


@pytest.fixture
def store(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    yield ResultsStore(engine)
    engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    upgrade(engine)
    yield ResultsStore(engine)
    engine.dispose()


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``--dist loadgroup``), tests that share one service they also disturb run in
    one worker, one after another: the container tests build and remove images by content-addressed
    tag (two builds of one tag at once race in the engine), and the job-queue tests stop and restart
    the broker (tests/evaluator/queue/test_queue_faults.py), which another queue test would see as
    its own fault. Everything else spreads over the workers.

    Tests that need a service beyond this process and bubblewrap (the container engine, the
    broker, PostgreSQL, a browser) are also marked ``service``: `make test-fast` leaves them out."""
    for item in items:
        path = item.nodeid.split("::", 1)[0].split("/")
        if "docker" in path or "[docker" in item.nodeid or "-docker" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("container-engine"))
            item.add_marker(pytest.mark.service)
        elif "queue" in path or path[-1] == "test_queue_commands.py":
            item.add_marker(pytest.mark.xdist_group("broker"))
            item.add_marker(pytest.mark.service)
        elif item.get_closest_marker("postgres") or "browser" in path[-1]:
            item.add_marker(pytest.mark.service)
