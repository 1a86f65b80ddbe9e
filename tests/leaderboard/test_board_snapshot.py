"""The board snapshot (issue 19): the evaluator stores a board's rank intervals, skill and detectable
difference when an evaluation finishes (evaluator.results.board); the website reads them when the
snapshot's fingerprint is the board's and computes them with the same functions otherwise. Both
paths give byte-identical pages, API answers and CSV, with the in-process cache on or off."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import update

import evaluator.results.board as shared
import leaderboard.board as site_board
from benchmark.task import get_task
from evaluator.results.board import SNAPSHOT_FORMAT, read_snapshot
from evaluator.runner import refresh_snapshot
from evaluator.store import BoardSnapshotRow, session_scope
from leaderboard import create_app

from .conftest import noisy_instances

TASK = "planted-features"
PATHS = [
    f"/tasks/{TASK}",
    f"/tasks/{TASK}?sort=name&order=desc",
    f"/api/v1/tasks/{TASK}/leaderboard",
    f"/api/v1/tasks/{TASK}/leaderboard?limit=3&offset=2",
    f"/api/v1/tasks/{TASK}/leaderboard?format=csv",
    f"/tasks/{TASK}/leaderboard.csv",
    "/",
    "/api/v1/overall",
    "/api/v1/overall?format=csv",
]


def _fill(add, n: int = 30) -> None:
    rng = np.random.default_rng(11)
    base = rng.uniform(0.2, 0.6, n)

    def values(shift: float, noise: float = 0.1) -> list[dict]:
        return noisy_instances([float(v) for v in np.clip(base + shift + rng.normal(0, noise, n), 0, 1)])
    for k in range(6):
        add(name=f"method-{k}", headline=0.4 + 0.05 * k, instances=values(0.05 * k))
    add(name="base", headline=0.45, baseline=True, instances=values(0.1))
    add(name="floor", headline=0.3, meta={"floor": True, "baseline": False}, instances=values(-0.1, 0.05))
    add(name="fitted", headline=0.9, meta={"fitted_on": ["dev"]}, instances=values(0.4))
    add(name="old", headline=0.5, task_version=get_task(TASK).metadata.version - 1, instances=values(0.1))


def _responses(url: str, cache: bool = True) -> dict[str, bytes]:
    return _get(url, cache, PATHS)


def _computing_forbidden(monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise AssertionError("computed although the stored snapshot holds it")
    for name in ("compute_intervals", "compute_skills", "compute_detectable", "compute_layout"):
        monkeypatch.setattr(site_board, name, refuse)


@pytest.mark.parametrize("cache", [True, False], ids=["cache-on", "cache-off"])
def test_the_snapshot_and_the_computed_board_give_identical_output(add, site_store, site_db_url, monkeypatch, cache):
    _fill(add)
    computed = _responses(site_db_url, cache)          # no snapshot: computed, as before
    refresh_snapshot(site_store, get_task(TASK), "dev")
    meta = get_task(TASK).metadata
    snapshot = read_snapshot(site_store, meta, "dev", site_store.board_fingerprint(TASK, "dev"))
    assert snapshot is not None and snapshot.intervals and snapshot.skills
    assert snapshot.detectable_difference is not None
    with monkeypatch.context() as m:
        _computing_forbidden(m)
        stored = _responses(site_db_url, cache)
    assert stored == computed


def test_a_stale_snapshot_is_not_used_and_a_new_one_computes_only_the_newcomers_skill(add, site_store, site_db_url,
                                                                                       monkeypatch):
    _fill(add)
    refresh_snapshot(site_store, get_task(TASK), "dev")
    add(name="newcomer", headline=0.7, instances=noisy_instances([0.7] * 15 + [0.6] * 15))
    meta = get_task(TASK).metadata
    assert read_snapshot(site_store, meta, "dev", site_store.board_fingerprint(TASK, "dev")) is None
    fallback = _responses(site_db_url, cache=False)     # the snapshot is of the board before the newcomer
    assert b"newcomer" in fallback[f"/api/v1/tasks/{TASK}/leaderboard"]

    skilled: list[dict] = []
    real = shared.skill_against_floor

    def counting(method, *args, **kwargs):
        skilled.append(method)
        return real(method, *args, **kwargs)
    monkeypatch.setattr(shared, "skill_against_floor", counting)
    refresh_snapshot(site_store, get_task(TASK), "dev")
    assert len(skilled) == 1                            # the other rows' skills come from the last snapshot
    monkeypatch.setattr(shared, "skill_against_floor", real)
    with monkeypatch.context() as m:
        _computing_forbidden(m)
        assert _responses(site_db_url, cache=False) == fallback


def test_a_page_parses_only_the_summaries_of_the_rows_it_shows(add, site_store, site_db_url, monkeypatch):
    # A page of a 1,000-row board showed 100 rows but parsed all 1,000 stored summaries (its group
    # columns and ranked instances now come from the snapshot; the shown rows' in one query).
    import leaderboard.views.pages as pages
    from evaluator.results.summary import EvaluationSummary
    _fill(add)
    for k in range(20):
        add(name=f"extra-{k:02d}", headline=0.1 + 0.01 * k, instances=noisy_instances([0.1 + 0.01 * k] * 30))
    refresh_snapshot(site_store, get_task(TASK), "dev")
    parsed: list[object] = []
    real = EvaluationSummary.from_stored.__func__        # type: ignore[attr-defined]

    def counting(cls, raw, record_format):
        parsed.append(raw)
        return real(cls, raw, record_format)
    monkeypatch.setattr(EvaluationSummary, "from_stored", classmethod(counting))
    monkeypatch.setattr(pages, "PAGE_SIZE", 3)
    app = create_app({"TESTING": True, "DATABASE_URL": site_db_url, "LEADERBOARD_CACHE": False})
    client = app.test_client()
    n_rows = 30                      # 26 current, a floor, an in-sample and a stale row, and the base
    for path, most in ((f"/tasks/{TASK}", 3 + 3 + 8), (f"/api/v1/tasks/{TASK}/leaderboard?limit=3", 3 + 3), ("/", 4)):
        parsed.clear()
        assert client.get(path).status_code == 200
        assert len(parsed) <= most < n_rows, (path, len(parsed))
    app.extensions["phasebench_db"].engine.dispose()


@pytest.mark.parametrize("cache", [True, False], ids=["cache-on", "cache-off"])
def test_the_api_and_the_overview_read_the_stored_rows_without_building_a_board(add, site_store, site_db_url,
                                                                                monkeypatch, cache):
    # They built the whole board (every row loaded and ranked) for each answer: O(board), not O(page).
    _fill(add)
    paths = [f"/api/v1/tasks/{TASK}/leaderboard", f"/api/v1/tasks/{TASK}/leaderboard?limit=3&offset=2",
             f"/api/v1/tasks/{TASK}/leaderboard?offset=100000", "/", "/api/v1/overall"]
    from benchmark.task import all_tasks
    for other in all_tasks():
        if other.name != TASK:
            refresh_snapshot(site_store, other, "dev")      # empty boards are stored too
    computed = {p: v for p, v in _responses(site_db_url, cache).items() if p in paths}
    computed.update(_get(site_db_url, cache, [p for p in paths if p not in computed]))
    refresh_snapshot(site_store, get_task(TASK), "dev")

    def refuse(*_args, **_kwargs):
        raise AssertionError("a board was built although its rows are stored")
    with monkeypatch.context() as m:
        m.setattr(site_board, "get_board", refuse)
        m.setattr(site_board, "_computed_view", refuse)
        assert _get(site_db_url, cache, paths) == computed
    # rows stored under other task metadata or code (another digest) are not shown: built again
    monkeypatch.setattr(shared, "board_digest", lambda meta: "another")
    with monkeypatch.context() as m:
        m.setattr(site_board, "compute_intervals", refuse)
        assert _get(site_db_url, cache, paths) == computed


def _get(url: str, cache: bool, paths: list[str]) -> dict[str, bytes]:
    app = create_app({"TESTING": True, "DATABASE_URL": url, "LEADERBOARD_CACHE": cache})
    client = app.test_client()
    out = {}
    for path in paths:
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        out[path] = resp.get_data()
    app.extensions["phasebench_db"].engine.dispose()
    return out


def test_a_snapshot_of_another_format_or_shape_is_ignored(add, site_store, site_db_url):
    _fill(add)
    refresh_snapshot(site_store, get_task(TASK), "dev")
    meta = get_task(TASK).metadata
    fingerprint = site_store.board_fingerprint(TASK, "dev")
    assert read_snapshot(site_store, meta, "dev", fingerprint) is not None
    expected = _responses(site_db_url)
    for change in ({"snapshot_format": SNAPSHOT_FORMAT + 1}, {"payload": {"intervals": "not a mapping"}}):
        with session_scope(site_store.engine) as s:
            s.execute(update(BoardSnapshotRow).values(**change))
        assert read_snapshot(site_store, meta, "dev", fingerprint) is None
        assert _responses(site_db_url) == expected


def test_the_snapshot_is_stored_by_the_evaluator_for_board_splits_only(add, site_store):
    _fill(add)
    refresh_snapshot(site_store, get_task(TASK), "train")
    assert site_store.board_snapshot(TASK, get_task(TASK).metadata.version, "train") is None
    refresh_snapshot(site_store, get_task(TASK), "dev")
    assert site_store.board_snapshot(TASK, get_task(TASK).metadata.version, "dev") is not None


def test_skills_read_from_a_snapshot_are_kept_so_a_new_result_computes_only_its_own(add, site_store, site_db_url,
                                                                                     monkeypatch):
    """A site that served the skills from the snapshot, then sees a result the snapshot does not cover
    yet (the evaluator stores the new one just after), computes the newcomer's skill alone, not the
    whole board's (seconds with 1,000 rows)."""
    _fill(add)
    refresh_snapshot(site_store, get_task(TASK), "dev")
    app = create_app({"TESTING": True, "DATABASE_URL": site_db_url, "FRESHNESS_S": 0})
    client = app.test_client()
    assert client.get(f"/api/v1/tasks/{TASK}/leaderboard").status_code == 200     # skills from the snapshot
    add(name="newcomer", headline=0.7, instances=noisy_instances([0.7] * 15 + [0.6] * 15))
    skilled: list[dict] = []
    real = shared.skill_against_floor

    def counting(method, *args, **kwargs):
        skilled.append(method)
        return real(method, *args, **kwargs)
    monkeypatch.setattr(shared, "skill_against_floor", counting)
    assert b"newcomer" in client.get(f"/api/v1/tasks/{TASK}/leaderboard").get_data()
    assert len(skilled) == 1
    app.extensions["phasebench_db"].engine.dispose()
