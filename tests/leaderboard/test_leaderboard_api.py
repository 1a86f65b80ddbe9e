"""The JSON API."""
from __future__ import annotations

import pytest

from .leaderboard_helpers import api_order, page_order


def test_api_tasks_metadata(client):
    r = client.get("/api/tasks")
    assert r.status_code == 200
    tasks = {t["name"]: t for t in r.get_json()["tasks"]}
    pf = tasks["planted-features"]
    assert pf["headline"] == "recall@0.9" and pf["version"] >= 1 and pf["description"]
    assert pf["groups"][0] == "T0"
    metric = next(m for m in pf["metrics"] if m["name"] == "recall@0.9")
    assert metric["higher_is_better"] is True and metric["aggregation"] == "mean"


def test_api_leaderboard_rows(client, add):
    ev = add(name="sub-a", headline=0.7, baseline=True)
    add(name="sub-b", headline=0.2)
    data = client.get("/api/tasks/planted-features/leaderboard").get_json()
    assert data["split"] == "dev" and data["headline"] == "recall@0.9"
    row = data["rows"][0]
    for key in ("rank", "submission", "baseline", "evaluation_id", "headline", "ci_low", "ci_high", "metrics",
                "groups", "n_failed", "n_instances", "runtime_s", "status", "dataset_revision", "finished_at"):
        assert key in row, key
    assert row["submission"] == "sub-a" and row["evaluation_id"] == ev and row["baseline"] is True
    assert row["n_failed"] == 1 and row["n_instances"] == 2 and row["status"] == "complete"
    assert row["groups"]["T0"]["recall@0.9"] == 0.7


def test_api_order_matches_page(client, add):
    for i, v in enumerate([0.1, 0.9, 0.5, 0.5, 0.3, float("nan")]):
        add(name=f"s{i}", headline=v, baseline=(i == 2))
    for split in ("dev", "test"):
        page = page_order(client.get(f"/tasks/planted-features?split={split}").get_data(as_text=True))
        api = api_order(client.get(f"/api/tasks/planted-features/leaderboard?split={split}").get_json())
        assert page == api
    assert page_order(client.get("/tasks/planted-features").get_data(as_text=True))[0] == "s1"


def test_api_evaluation(client, add):
    ev = add(name="sub-a", headline=0.5, status="partial")
    data = client.get(f"/api/evaluations/{ev}").get_json()
    prov = data["provenance"]
    for key in ("code_sha256", "git_commit", "dataset_revision", "evaluator_version", "sandbox", "device",
                "hardware", "library_versions", "started_at", "finished_at"):
        assert key in prov, key
    assert data["status"] == "partial" and data["task"] == "planted-features"
    failed = [i for i in data["instances"] if i["status"] != "ok"]
    assert failed and failed[0]["error"] == "exceeded the wall-time limit of 900 s"
    assert data["reproduce"].startswith("phasebench evaluate submissions/sub-a --task planted-features")


def test_api_errors_are_json(client):
    for path, code in [("/api/tasks/nope/leaderboard", 404), ("/api/evaluations/12345", 404),
                       ("/api/no-such-endpoint", 404), ("/api/tasks/planted-features/leaderboard?split=x", 400)]:
        r = client.get(path)
        assert r.status_code == code and r.is_json, path
        body = r.get_json()
        assert body["status"] == code and body["message"]


def test_builder_accepts_a_session(client, site_engine):
    from evaluator.store import session_scope

    from .conftest import make_evaluation
    with session_scope(site_engine) as s:
        ev = make_evaluation(s, name="via-session", headline=0.25)
    data = client.get("/api/tasks/planted-features/leaderboard").get_json()
    assert [(r["submission"], r["evaluation_id"]) for r in data["rows"]] == [("via-session", ev)]


# --- paging -------------------------------------------------------------------------------------
def test_leaderboard_pages_follow_next_links_to_the_whole_table(client, add):
    for i in range(7):
        add(name=f"s{i}", headline=i / 10)
    whole = api_order(client.get("/api/v1/tasks/planted-features/leaderboard?limit=1000").get_json())
    assert len(whole) == 7
    seen, url = [], "/api/v1/tasks/planted-features/leaderboard?limit=3"
    while url:
        r = client.get(url)
        body = r.get_json()
        assert body["page"]["total"] == 7 and body["page"]["limit"] == 3
        seen += api_order(body)
        url = body["page"]["next"]
        assert (r.headers.get("Link") or "").startswith(f"<{url}>; rel=\"next\"") if url else True
    assert seen == whole
    last = client.get("/api/v1/tasks/planted-features/leaderboard?limit=3&offset=6").get_json()["page"]
    assert last["next"] is None and last["previous"] == "/api/v1/tasks/planted-features/leaderboard?limit=3&offset=3"
    assert client.get("/api/tasks/planted-features/leaderboard?limit=3").get_json()["page"]["next"].startswith("/api/tasks/")


def test_default_page_size_and_csv_is_never_paged(client, add, monkeypatch):
    from leaderboard import views
    for i in range(4):
        add(name=f"s{i}", headline=i / 10)
    assert client.get("/api/v1/tasks/planted-features/leaderboard").get_json()["page"]["limit"] == views.DEFAULT_LIMIT
    csv_text = client.get("/api/v1/tasks/planted-features/leaderboard?format=csv&limit=1").get_data(as_text=True)
    assert len(csv_text.strip().splitlines()) == 1 + 4


def test_evaluation_submission_and_overall_are_paged(client, add):
    from .conftest import noisy_instances
    ev = add(name="sub-a", headline=0.5, instances=noisy_instances([0.1, 0.2, 0.3, 0.4, 0.5]))
    add(name="sub-a", headline=0.6, code_sha256="f" * 64)
    add(name="sub-b", headline=0.7)
    data = client.get(f"/api/v1/evaluations/{ev}?limit=2&offset=2").get_json()
    assert [i["instance_id"] for i in data["instances"]] == ["i-002", "i-003"]
    assert data["page"] == {"total": 5, "limit": 2, "offset": 2,
                            "next": f"/api/v1/evaluations/{ev}?limit=2&offset=4",
                            "previous": f"/api/v1/evaluations/{ev}?limit=2&offset=0"}
    sub = client.get("/api/v1/submissions/sub-a?limit=1").get_json()
    assert len(sub["evaluations"]) == 1 and sub["page"]["total"] == 2
    add(name="floor", headline=0.0, meta={"floor": True},
        instances=noisy_instances([0.0] * 5))
    overall = client.get("/api/v1/overall?limit=1&offset=1").get_json()
    assert [r["submission"] for r in overall["rows"]] == ["sub-a"] and overall["page"]["total"] == 2



@pytest.mark.parametrize("query,param", [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
                                         ("offset=-1", "offset"), ("offset=1.5", "offset")])
@pytest.mark.parametrize("path", ["/api/v1/tasks/planted-features/leaderboard", "/api/v1/overall",
                                  "/api/v1/submissions/sub-a", "/api/v1/evaluations/{ev}"])
def test_bad_paging_is_a_400_naming_the_parameter(client, add, path, query, param):
    ev = add(name="sub-a", headline=0.5)
    r = client.get(path.format(ev=ev) + "?" + query)
    assert r.status_code == 400 and r.is_json
    assert r.get_json()["message"].startswith(f"?{param}= must be an integer")
