"""The API keeps its contract: /api/v1/openapi.json is a valid OpenAPI 3.1 document, and real
answers of every route it lists (bodies and errors) validate against the schema it declares for
that status. The document is generated from the models the views build (leaderboard/api_models.py);
this test catches a view that answers past them, and a model whose document no longer holds."""
from __future__ import annotations

import json
import math
import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from evaluator.store.jobs import JobStore

from .conftest import noisy_instances

PF = "planted-features"


@pytest.fixture
def doc(client) -> dict:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    return r.get_json()


def test_document_is_valid_openapi(doc):
    validate_openapi(doc)
    assert doc["openapi"] == "3.1.0"


def _route(doc: dict, path: str) -> str:
    """The document's path template that ``path`` (under /api/v1) falls under."""
    found = [t for t in doc["paths"] if re.fullmatch(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(t)), path)]
    assert len(found) == 1, (path, found)
    return found[0]


def _check(client, doc: dict, url: str, covered: set[str]) -> dict:
    r = client.get(url)
    template = _route(doc, url.split("?")[0][len("/api/v1"):])
    responses = doc["paths"][template]["get"]["responses"]
    assert str(r.status_code) in responses, (url, r.status_code, r.data[:300])
    assert r.mimetype == "application/json", url

    def no_constant(name: str):
        raise AssertionError(f"{url}: {name} in the body (not JSON)")
    body = json.loads(r.get_data(as_text=True), parse_constant=no_constant)
    schema = {**responses[str(r.status_code)]["content"]["application/json"]["schema"],
              "components": doc["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{url} ({r.status_code}) does not match the document: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:5])
    covered.add(template)
    return body


@pytest.fixture
def populated(add, site_engine):
    """A board with every kind of row (ranked with intervals, baseline, unranked NaN, floor,
    in-sample, stale), plot details, a second code version, and jobs in every state."""
    def inst(values, **extra):
        out = noisy_instances(values)
        for k, i in enumerate(out):
            i["details"] = {"n_over_d": [2.0, 4.0, 8.0][k % 3], "l0": [4.0, 12.0][k % 2], **extra}
        return out
    ids = {
        "best": add(name="best", headline=0.8, instances=inst([0.8, 0.9, 0.7, 0.85, 0.75, 0.8])),
        "base": add(name="base", headline=0.5, baseline=True, instances=inst([0.5, 0.4, 0.6, 0.5, 0.45, 0.55])),
        "nan": add(name="nan-method", headline=float("nan"), instances=inst([math.nan] * 6, odd=math.inf)),
        "floor": add(name="floor", headline=0.1, meta={"floor": True}, instances=inst([0.1] * 6)),
        "fitted": add(name="fitted", headline=0.95, meta={"fitted_on": ["dev"]}, instances=inst([0.95] * 6)),
        "stale": add(name="old", headline=0.9, task_version=0),
        "running": add(name="best", status="running", code_sha256="1" * 64),
    }
    jobs = JobStore(site_engine)
    for state, name in (("done", "best"), ("failed", "base"), ("running", "floor"), ("queued", "fitted")):
        job = jobs.create(message_id=f"m-{name}", queue="phasebench.cpu", submission_name=name,
                          submission_dir=f"/subs/{name}", code_sha256="0" * 64, task=PF, split="dev",
                          sandbox="bwrap", device="cpu", force=False, options={}).id
        if state != "queued":
            jobs.claim(job, "box#slot0")
        if state == "done":
            jobs.finish(job, ids["best"])
        elif state == "failed":
            jobs.fail(job, "manifest.json is missing")
    return ids


def test_every_route_answers_as_documented(client, doc, populated):
    ids = populated
    covered: set[str] = set()
    urls = ["/api/v1/openapi.json", "/api/v1/tasks", f"/api/v1/tasks/{PF}", f"/api/v1/tasks/{PF}/plots",
            "/api/v1/jobs", "/api/v1/jobs?state=queued&limit=1",
            f"/api/v1/compare?a={ids['best']}&b={ids['base']}", f"/api/v1/compare?a={ids['nan']}&b={ids['floor']}",
            "/api/v1/submissions/best", "/api/v1/submissions/best?limit=1&offset=1", "/api/v1/submissions/floor",
            # errors
            "/api/v1/tasks/nope", f"/api/v1/tasks/{PF}/leaderboard?split=train", f"/api/v1/tasks/{PF}/plots/nope",
            f"/api/v1/evaluations/{10**6}", "/api/v1/submissions/nobody", "/api/v1/compare?a=x&b=1",
            "/api/v1/overall?limit=0", "/api/v1/jobs?state=lost", "/api/v1/tasks?format=xml"]
    for split in ("dev", "test"):
        urls += [f"/api/v1/tasks/{PF}/leaderboard?split={split}", f"/api/v1/overall?split={split}"]
    urls += [f"/api/v1/tasks/{PF}/leaderboard?limit=1&offset=1", "/api/v1/overall?limit=1"]
    urls += [f"/api/v1/evaluations/{i}" for i in ids.values()] + [f"/api/v1/evaluations/{ids['best']}?limit=2"]
    plots = client.get(f"/api/v1/tasks/{PF}/plots").get_json()["plots"]
    urls += [f"/api/v1/tasks/{PF}/plots/{p['name']}" for p in plots]
    urls += [f"/api/v1/tasks/{PF}/plots/{plots[0]['name']}?evaluations={ids['nan']},{ids['stale']}"]

    bodies = {url: _check(client, doc, url, covered) for url in urls}

    assert covered == set(doc["paths"]), set(doc["paths"]) - covered
    board = bodies[f"/api/v1/tasks/{PF}/leaderboard?split=dev"]
    # each section the schema describes is exercised, not just allowed to be empty
    assert board["floors"] and board["in_sample"] and board["stale"] and board["skill"]["floor"] == "floor"
    assert any(r["rank_interval"] for r in board["rows"]) and any(r["skill"] for r in board["rows"])
    nan_row = next(r for r in board["rows"] if r["submission"] == "nan-method")
    assert nan_row["headline"] is None and nan_row["rank"] is None     # NaN served as null
    assert [r["baseline"] for r in board["rows"] if r["submission"] == "base"] == [True]
    assert bodies[f"/api/v1/evaluations/{ids['base']}"]["baseline"] is True
    assert bodies[f"/api/v1/evaluations/{ids['nan']}"]["instances"][0]["details"]["odd"] is None
    assert {j["state"] for j in bodies["/api/v1/jobs"]["jobs"]} == {"queued", "running", "done", "failed"}
