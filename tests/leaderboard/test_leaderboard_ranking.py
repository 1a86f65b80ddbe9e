"""Ranking order: declared direction, finished-only, latest per submission, ties and missing values."""
from __future__ import annotations

import re

import pytest

from benchmark.metadata import Metric
from tests.builders import fake_task, registered

from .leaderboard_helpers import api_order, page_order

FAKE = "fake-lower"


@pytest.fixture
def lower_task():
    metrics = [Metric(name="error", description="absolute error", higher_is_better=False, best=0.0, worst=1.0),
               Metric(name="hit", description="hit rate", higher_is_better=True, best=1.0, worst=0.0)]
    with registered(fake_task(FAKE, metrics, version=2)) as name:
        yield name


def _both(client, task, split="dev"):
    page = client.get(f"/tasks/{task}?split={split}")
    api = client.get(f"/api/tasks/{task}/leaderboard?split={split}")
    assert page.status_code == 200 and api.status_code == 200
    return page_order(page.get_data(as_text=True)), api.get_json()


def test_higher_is_better_sorts_descending(client, add):
    for name, value in [("low", 0.3), ("high", 0.9), ("mid", 0.6)]:
        add(name=name, headline=value)
    order, payload = _both(client, "planted-features")
    assert order == ["high", "mid", "low"]
    assert api_order(payload) == order
    assert [r["rank"] for r in payload["rows"]] == [1, 2, 3]
    assert payload["higher_is_better"] is True


def test_lower_is_better_sorts_ascending(client, add, lower_task):
    for name, value in [("low", 0.3), ("high", 0.9), ("mid", 0.6)]:
        add(name=name, task=lower_task, headline=value, groups={"easy": value, "hard": value})
    order, payload = _both(client, lower_task)
    assert order == ["low", "mid", "high"]
    assert api_order(payload) == order
    assert payload["higher_is_better"] is False
    html = client.get(f"/tasks/{lower_task}").get_data(as_text=True)
    assert "lower is better" in html and "↓" in html
    # the overview names the lowest error as the leader
    index = client.get("/").get_data(as_text=True)
    section = index[index.index(lower_task):]
    assert "low" in section[:section.index("</section>")]
    assert "0.300" in section[:section.index("</section>")]


def test_unfinished_evaluations_never_ranked(client, add):
    add(name="done", headline=0.4)
    for status in ("running", "interrupted", "failed"):
        add(name=f"never-{status}", headline=0.99, status=status)
    # a submission whose newest run is unfinished keeps its older finished result
    add(name="rerun", headline=0.2)
    add(name="rerun", headline=0.95, status="running", code_sha256="f" * 64)
    order, payload = _both(client, "planted-features")
    assert order == ["done", "rerun"] == api_order(payload)
    assert payload["rows"][1]["headline"] == pytest.approx(0.2)
    html = client.get("/tasks/planted-features").get_data(as_text=True)
    assert "never-" not in html


def test_partial_counts_as_finished(client, add):
    add(name="part", headline=0.5, status="partial")
    order, _ = _both(client, "planted-features")
    assert order == ["part"]


def test_only_latest_finished_per_submission(client, add):
    old = add(name="sub-a", headline=0.9)
    new = add(name="sub-a", headline=0.1, code_sha256="e" * 64)
    add(name="sub-b", headline=0.5)
    order, payload = _both(client, "planted-features")
    assert order == ["sub-b", "sub-a"]
    row = payload["rows"][1]
    assert row["evaluation_id"] == new != old
    assert row["headline"] == pytest.approx(0.1)


def test_splits_are_separate(client, add):
    add(name="dev-only", headline=0.5, split="dev")
    add(name="test-only", headline=0.5, split="test")
    assert _both(client, "planted-features", "dev")[0] == ["dev-only"]
    assert _both(client, "planted-features", "test")[0] == ["test-only"]


def test_train_results_never_reach_a_board(client, add):
    """A method is fitted on train: its train score is stored (phasebench evaluate --split train) but is no
    board's row, neither dev's nor test's, nor the overall ranking's, and no board of train exists."""
    add(name="dev-row", headline=0.5, split="dev")
    add(name="fitted-here", headline=0.99, split="train")
    for split in ("dev", "test"):
        page, api = _both(client, "planted-features", split)
        assert "fitted-here" not in page and "fitted-here" not in str(api)
        overall = client.get(f"/api/overall?split={split}")
        assert overall.status_code == 200 and "fitted-here" not in overall.get_data(as_text=True)
    r = client.get("/api/tasks/planted-features/leaderboard?split=train")
    assert r.status_code == 400 and "never shown or ranked" in r.get_json()["message"]


def test_ties_share_rank_and_missing_values_go_last(client, add):
    add(name="b", headline=0.5)
    add(name="a", headline=0.5)
    add(name="c", headline=0.7)
    add(name="nan", headline=float("nan"))
    add(name="none", headline=None, metrics={}, groups={})
    order, payload = _both(client, "planted-features")
    assert order[:3] == ["c", "a", "b"]
    assert set(order[3:]) == {"nan", "none"}
    assert [r["rank"] for r in payload["rows"]] == [1, 2, 2, None, None]
    assert all(r["headline"] is None for r in payload["rows"][3:])  # NaN is not valid JSON


def test_nan_headline_renders_dash(client, add):
    ev = add(name="sub-nan", headline=float("nan"))
    html = client.get("/tasks/planted-features").get_data(as_text=True)
    row = html[html.index('data-submission="sub-nan"'):]
    row = row[:row.index("</tr>")]
    cell = re.search(r'<td class="num"><a href="/evaluations/\d+">([^<]*)</a>', row).group(1)
    assert cell == "—"
    assert not re.search(r"\bnan\b", row.replace("sub-nan", ""), re.I)
    assert client.get(f"/evaluations/{ev}").status_code == 200
    assert not re.search(r"\bnan\b", client.get("/").get_data(as_text=True).replace("sub-nan", ""), re.I)
    data = client.get(f"/api/evaluations/{ev}").get_json()
    assert data["headline"] is None and data["metrics"]["recall@0.9"]["value"] is None


def test_baseline_marked(client, add):
    add(name="ref-method", headline=0.4, baseline=True)
    add(name="new-method", headline=0.6)
    html = client.get("/tasks/planted-features").get_data(as_text=True)
    ref = html[html.index('data-submission="ref-method"'):]
    ref = ref[:ref.index("</tr>")]
    new = html[html.index('data-submission="new-method"'):]
    new = new[:new.index("</tr>")]
    assert 'class="tag baseline"' in ref and "baseline" not in new
    payload = client.get("/api/tasks/planted-features/leaderboard").get_json()
    assert {r["submission"]: r["baseline"] for r in payload["rows"]} == {"ref-method": True, "new-method": False}
    assert "baseline" in client.get("/submissions/ref-method").get_data(as_text=True)


def test_group_and_secondary_columns(client, add):
    add(name="g", headline=0.5, groups={"T0": 0.25, "T3": 0.75}, metrics={"mmcs": 0.875})
    html = client.get("/tasks/planted-features").get_data(as_text=True)
    head = html[html.index("<thead>"):html.index("</thead>")]
    for col in ("T0", "T3", "mmcs", "recall@0.99", "Failed / n", "Runtime", "Status", "Date"):
        assert col in head
    assert "T1" not in head  # only groups that appear
    assert "0.250" in html and "0.750" in html and "0.875" in html
    assert "[0.400, 0.600]" in html  # headline CI
