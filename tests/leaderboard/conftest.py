"""Fixtures for the leaderboard tests: a fresh migrated SQLite database, a builder for stored
evaluations, the Flask app and its test client."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from benchmark.task import get_task
from evaluator.store import (Evaluation, InstanceResult, ResultsStore, Submission, make_engine,
                             session_scope, upgrade)
from leaderboard import create_app

_clock = {"t": datetime(2025, 1, 1, tzinfo=timezone.utc)}


def _tick() -> datetime:
    _clock["t"] += timedelta(minutes=1)
    return _clock["t"]


def make_evaluation(store_or_session: Any, name: str = "sub-a", task: str = "planted-features",
                    split: str = "dev", headline: float | None = 0.5, baseline: bool = False,
                    status: str = "complete", **overrides: Any) -> int:
    """Store one evaluation (and its submission, reused by name + code hash) with tiny defaults.

    ``store_or_session`` is a ResultsStore, an Engine or an open Session. Keyword overrides set
    Evaluation columns; a few special keys: ``code_sha256``, ``git_commit``, ``meta`` (merged into
    the submission metadata), ``metrics`` (extra aggregate metrics ``{name: value}``), ``groups``
    (``{group: headline value}``), ``instances`` (a list of InstanceResult field dicts).
    Returns the evaluation id.
    """
    if isinstance(store_or_session, ResultsStore):
        store_or_session = store_or_session.engine
    if isinstance(store_or_session, Engine):
        with session_scope(store_or_session) as s:
            return make_evaluation(s, name, task, split, headline, baseline, status, **overrides)
    s = store_or_session

    try:
        meta = get_task(task).metadata
        headline_name, metric_names, version = meta.headline, [m.name for m in meta.metrics], meta.version
    except KeyError:
        headline_name, metric_names, version = "score", ["score"], 1
    headline_name = overrides.pop("headline_metric", headline_name)

    code = overrides.pop("code_sha256", hashlib.sha256(name.encode()).hexdigest())
    sub = s.scalars(select(Submission).filter_by(name=name, code_sha256=code)).first()
    if sub is None:
        sub_meta = {"name": name, "authors": ["A. Author"], "description": f"method {name}",
                    "license": "MIT", "url": "https://example.org", "baseline": baseline, "gpu": False,
                    "requirements": [], "tasks": [task]}
        sub_meta.update(overrides.pop("meta", {}))
        sub = Submission(name=name, code_sha256=code, git_commit=overrides.pop("git_commit", "abc1234"),
                         meta=sub_meta, created_at=_tick())
        s.add(sub)
        s.flush()
    else:
        overrides.pop("meta", None)
        overrides.pop("git_commit", None)

    finished = status in ("complete", "partial", "interrupted", "failed")
    extra = overrides.pop("metrics", {})
    groups = overrides.pop("groups", {"T0": headline, "T1": headline})
    summary = None
    if status in ("complete", "partial"):
        lo = None if headline is None else headline - 0.1
        hi = None if headline is None else headline + 0.1
        metrics = {m: {"value": headline, "ci_low": lo, "ci_high": hi} for m in metric_names}
        for k, v in extra.items():
            metrics[k] = {"value": v, "ci_low": v, "ci_high": v}
        summary = {"n_instances": 2, "metrics": metrics,
                   "groups": {g: {"n": 1, headline_name: v} for g, v in groups.items()}}
    instances = overrides.pop("instances", None)
    if instances is None:
        instances = [
            {"instance_id": "i-000", "group": "T0", "status": "ok",
             "metrics": {m: headline for m in metric_names}, "runtime_s": 1.5, "error": None},
            {"instance_id": "i-001", "group": "T1", "status": "timeout",
             "metrics": {m: 0.0 for m in metric_names}, "runtime_s": 900.0,
             "error": "exceeded the wall-time limit of 900 s"},
        ]
    started = _tick()
    fields: dict[str, Any] = dict(
        submission_id=sub.id, task=task, task_version=version, split=split,
        dataset_revision="sha256:" + "0" * 64, evaluator_version="0.1.0", sandbox="process", device="cpu",
        hardware={"cpu": "test-cpu", "cores": 4}, library_versions={"numpy": "2.0.0", "torch": "2.3.0"},
        started_at=started, finished_at=_tick() if finished else None, status=status,
        headline_metric=headline_name,
        headline=headline if summary else None,
        headline_ci_low=(summary["metrics"][headline_name]["ci_low"] if summary else None),
        headline_ci_high=(summary["metrics"][headline_name]["ci_high"] if summary else None),
        n_instances=len(instances), n_failed=sum(1 for i in instances if i["status"] != "ok"),
        runtime_s=12.5 if finished else None, metrics=summary, note=None,
    )
    fields.update(overrides)
    ev = Evaluation(**fields)
    s.add(ev)
    s.flush()
    for inst in instances:
        s.add(InstanceResult(evaluation_id=ev.id, **inst))
    s.flush()
    return ev.id


# Named site_* so they do not shadow the shared (SQLite/PostgreSQL-parametrized) fixtures in
# tests/conftest.py: the website's tests run on one fresh SQLite file each.
@pytest.fixture
def site_db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'results.sqlite'}"


@pytest.fixture
def site_engine(site_db_url) -> Engine:
    eng = make_engine(site_db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def site_store(site_engine) -> ResultsStore:
    return ResultsStore(site_engine)


@pytest.fixture
def add(site_store) -> Callable[..., int]:
    """``add(name=..., headline=..., ...)``: make_evaluation bound to the test database."""
    return lambda *args, **kw: make_evaluation(site_store, *args, **kw)


@pytest.fixture
def app(site_engine, site_db_url):
    app = create_app({"TESTING": True, "DATABASE_URL": site_db_url})
    yield app
    app.extensions["phasebench_db"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def noisy_instances(values: list[float], groups: tuple[str, ...] = ("T0", "T1", "T2"),
                    metric: str = "recall@0.9", extra: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """InstanceResult dicts ``i-000``, ``i-001``, ... with the given headline values, cycling groups."""
    return [{"instance_id": f"i-{k:03d}", "group": groups[k % len(groups)], "status": "ok",
             "metrics": {metric: v, **(extra or {})}, "runtime_s": 1.0, "error": None}
            for k, v in enumerate(values)]


@pytest.fixture
def second_task():
    """Register a second (lower-is-better) task for the duration of a test."""
    from tests.builders import fake_task, registered

    with registered(fake_task("fake-second")) as name:
        yield name
