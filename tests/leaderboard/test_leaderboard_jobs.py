"""The jobs page and /api/v1/jobs: states, queue positions, reasons; read-only; bad queries are 400."""
from __future__ import annotations

import csv
import io

import pytest

from evaluator.store.jobs import JobStore


def _job(jobs: JobStore, name: str, **overrides) -> int:
    fields = dict(message_id=f"m-{name}", queue="phasebench.cpu", submission_name=name,
                  submission_dir=f"/subs/{name}", code_sha256=name.ljust(64, "0")[:64], task="planted-features",
                  split="dev", sandbox="bwrap", device="cpu", force=False, options={})
    fields.update(overrides)
    return jobs.create(**fields).id


@pytest.fixture
def jobs(site_engine):
    return JobStore(site_engine)


@pytest.fixture
def four_jobs(jobs, add):
    """done (with its evaluation), failed, running, and two queued behind it."""
    ev = add(name="done-sub", headline=0.7)
    done = _job(jobs, "done-sub")
    jobs.claim(done, "gpu-box#slot0")
    jobs.finish(done, ev)
    failed = _job(jobs, "failed-sub")
    jobs.claim(failed, "cpu-box#slot1")
    jobs.fail(failed, "data for planted-features/dev: manifest.json is missing")
    running = _job(jobs, "running-sub")
    jobs.claim(running, "cpu-box#slot0")
    first, second = _job(jobs, "queued-a"), _job(jobs, "queued-b")
    return {"done": done, "failed": failed, "running": running, "first": first, "second": second, "ev": ev}


def test_api_lists_states_positions_and_reasons(client, four_jobs):
    r = client.get("/api/v1/jobs")
    assert r.status_code == 200 and r.is_json
    body = r.get_json()
    assert body["counts"] == {"queued": 2, "running": 1, "done": 1, "failed": 1}
    by_id = {j["id"]: j for j in body["jobs"]}
    assert [j["id"] for j in body["jobs"]] == sorted(by_id, reverse=True)  # newest first
    assert (by_id[four_jobs["first"]]["position"], by_id[four_jobs["second"]]["position"]) == (1, 2)
    done = by_id[four_jobs["done"]]
    assert (done["state"], done["evaluation_id"], done["worker"], done["attempts"], done["position"]) == \
        ("done", four_jobs["ev"], "gpu-box#slot0", 1, None)
    assert by_id[four_jobs["failed"]]["reason"].startswith("data for planted-features/dev")
    queued = client.get("/api/v1/jobs?state=queued&state=running").get_json()["jobs"]
    assert {j["state"] for j in queued} == {"queued", "running"} and len(queued) == 3
    assert [j["submission"] for j in client.get("/api/v1/jobs?submission=queued-b").get_json()["jobs"]] == ["queued-b"]
    assert len(client.get("/api/v1/jobs?limit=2").get_json()["jobs"]) == 2


def test_api_csv(client, four_jobs):
    r = client.get("/api/v1/jobs?format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert {row["state"] for row in rows} == {"queued", "running", "done", "failed"}
    assert [row["position"] for row in rows if row["state"] == "queued"] == ["2", "1"]


@pytest.mark.parametrize("query, message", [
    ("state=lost", "unknown job state 'lost'"), ("limit=0", "between 1 and 1000"),
    ("limit=ten", "limit must be an integer"), ("format=xml", "unknown format")])
def test_api_bad_queries_are_400(client, query, message):
    r = client.get(f"/api/v1/jobs?{query}")
    assert r.status_code == 400 and message in r.get_json()["message"]


def test_page_shows_every_job_with_links(client, four_jobs):
    html = client.get("/jobs").get_data(as_text=True)
    assert 'href="/jobs"' in client.get("/").get_data(as_text=True)  # in the site's navigation
    for name in ("done-sub", "failed-sub", "running-sub", "queued-a", "queued-b"):
        assert f'href="/submissions/{name}"' in html
    assert f'href="/evaluations/{four_jobs["ev"]}"' in html
    assert "manifest.json is missing" in html and "gpu-box#slot0" in html
    row = html.split(f'id="job-{four_jobs["second"]}"')[1].split("</tr>")[0]
    assert '<td class="num">2</td>' in row  # second in line
    only_failed = client.get("/jobs?state=failed").get_data(as_text=True)
    assert "failed-sub" in only_failed and "queued-a" not in only_failed
    assert client.get("/jobs?state=nope").status_code == 400


def test_empty_queue(client):
    assert "No jobs" in client.get("/jobs").get_data(as_text=True)
    assert client.get("/api/v1/jobs").get_json() == {
        "counts": {"queued": 0, "running": 0, "done": 0, "failed": 0}, "jobs": []}
