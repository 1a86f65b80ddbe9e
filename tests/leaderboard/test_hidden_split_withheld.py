"""A hidden split's per-instance results never leave the website (red-team finding, issue 19 session):
the per-instance rows of a test evaluation carry the task's truths in their details (the true grok
step, p, the loss at the query), the instance's hidden group and scores from which the answer can be
solved, each keyed by the instance id every method is handed. A method that read them off the test
board's plots, its evaluations' CSV or a comparison scored 0.027 on scaling-exponents against the
floor's 0.244. Every public surface must publish a hidden split's aggregates only."""
from __future__ import annotations


import pytest

from leaderboard import create_app

from .conftest import make_evaluation

TASK = "scaling-exponents"
SECRET_ID = "inst-7f3e9c"            # what an attacker keys on
SECRET_TRUTH = 4.123456789           # a truth the task's details carry
SECRET_GROUP = "T1"                  # group names are public (aggregates per group); which instance is in one is not


def _instances(prediction: float) -> list[dict]:
    return [{"instance_id": SECRET_ID, "group": SECRET_GROUP, "status": "ok",
             "metrics": {"log_loss_error": 0.777123, "exponent_error": 0.555321},
             "runtime_s": 1.0, "error": None,
             "details": {"true_loss": SECRET_TRUTH, "predicted_loss": prediction, "kind": "secret-kind"}},
            {"instance_id": "inst-other", "group": SECRET_GROUP, "status": "invalid",
             "metrics": {"log_loss_error": 1.0, "exponent_error": 1.0}, "runtime_s": 1.0,
             "error": f"the answer was not {SECRET_TRUTH}", "details": {"true_loss": SECRET_TRUTH}}]


def _leaks(body: bytes) -> list[str]:
    text = body.decode("utf-8", "replace")
    return [s for s in (SECRET_ID, "inst-other", str(SECRET_TRUTH), "4.1234567", "0.777123", "0.555321", "secret-kind")
            if s in text]


@pytest.fixture
def boards(site_store):
    ids = {}
    for split in ("test", "dev"):
        ids[split] = (make_evaluation(site_store, name="method-a", task=TASK, split=split, headline=0.3,
                                      instances=_instances(4.0)),
                      make_evaluation(site_store, name="method-b", task=TASK, split=split, headline=0.4,
                                      instances=_instances(3.0)))
    return ids


def _surfaces(a: int, b: int, split: str) -> list[str]:
    return [f"/tasks/{TASK}?split={split}", f"/tasks/{TASK}/leaderboard.csv?split={split}",
            f"/api/v1/tasks/{TASK}/leaderboard?split={split}", f"/api/v1/tasks/{TASK}/leaderboard?split={split}&format=csv",
            f"/api/v1/tasks/{TASK}/plots/predicted-vs-true-loss?split={split}",
            f"/api/v1/tasks/{TASK}/plots/predicted-vs-true-loss?split={split}&format=csv",
            f"/api/v1/tasks/{TASK}/plots/predicted-vs-true-loss?split={split}&evaluations={a},{b}",
            f"/evaluations/{a}", f"/api/v1/evaluations/{a}", f"/api/v1/evaluations/{a}?format=csv",
            f"/compare?a={a}&b={b}", f"/api/v1/compare?a={a}&b={b}",
            *(f"/api/v1/compare?a={a}&b={b}&format=csv&table={t}" for t in ("instances", "metrics", "groups")),
            f"/tasks/{TASK}/plot.svg?split={split}", "/submissions/method-a", "/api/v1/submissions/method-a",
            f"/?split={split}", f"/api/v1/overall?split={split}"]


@pytest.mark.parametrize("cache", [True, False], ids=["cache-on", "cache-off"])
def test_no_public_surface_gives_a_hidden_splits_instance_away(boards, site_db_url, cache):
    app = create_app({"TESTING": True, "DATABASE_URL": site_db_url, "LEADERBOARD_CACHE": cache})
    client = app.test_client()
    a, b = boards["test"]
    for path in _surfaces(a, b, "test"):
        resp = client.get(path)
        assert resp.status_code in (200, 403, 404), (path, resp.status_code)
        assert _leaks(resp.get_data()) == [], path
        if resp.status_code == 403:
            assert b"not published" in resp.get_data(), path
    detail = client.get(f"/api/v1/evaluations/{a}").get_json()
    assert detail["instances_withheld"] is True and detail["instances"] == [] and detail["n_instances"] == 2
    compared = client.get(f"/api/v1/compare?a={a}&b={b}").get_json()
    assert compared["instances_withheld"] is True
    # a paired difference over T1's two instances would be the pair's scores: under MIN_HIDDEN_SLICE
    assert compared["groups"] == {}
    assert b"instances-withheld" in client.get(f"/evaluations/{a}").get_data()
    assert b"plots-withheld" in client.get(f"/tasks/{TASK}?split=test").get_data()
    # the dev split's answers are public: its per-instance results are shown as before
    a, b = boards["dev"]
    shown = b"".join(client.get(p).get_data() for p in _surfaces(a, b, "dev"))
    assert SECRET_ID.encode() in shown and b"4.123456789" in shown
    assert client.get(f"/api/v1/evaluations/{a}").get_json()["instances_withheld"] is False
    app.extensions["phasebench_db"].engine.dispose()
