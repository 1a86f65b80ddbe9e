"""HTML pages: content, provenance, errors, escaping."""
from __future__ import annotations

import hashlib
import re

import pytest

from evaluator.results.summary import RECORD_FORMAT
from leaderboard import create_app

XSS = "<script>alert(1)</script>"


def test_overview_lists_tasks_with_leader(client, add):
    add(name="sub-a", headline=0.3)
    add(name="sub-b", headline=0.8)
    add(name="sub-t", headline=0.9, split="test")
    html = client.get("/").get_data(as_text=True)
    assert "planted-features" in html and "Recover the directions" in html
    assert "recall@0.9" in html and "↑" in html
    card = html[html.index("planted-features"):]
    card = card[:card.index("</section>")]
    assert re.search(r"Submissions \(dev\)</dt><dd>2</dd>", card)
    assert "sub-b" in card and "0.800" in card and "sub-t" not in card
    test = client.get("/?split=test").get_data(as_text=True)
    assert "sub-t" in test and re.search(r"Submissions \(test\)</dt><dd>1</dd>", test)


def test_empty_database_pages(client):
    assert client.get("/").status_code == 200
    html = client.get("/tasks/planted-features").get_data(as_text=True)
    assert "No finished evaluations" in html
    assert "share of features whose Hungarian-matched atom" in html  # metric descriptions shown


def test_task_page_shows_descriptions(client, add):
    add(name="x", headline=0.5)
    html = client.get("/tasks/planted-features").get_data(as_text=True)
    assert "Recover the directions of n unit features" in html
    assert "share of features whose matched atom has |cos| &gt;= 0.99" in html
    assert "higher is better" in html


def test_unknown_task_404_did_you_mean(client):
    r = client.get("/tasks/planted-feature")
    assert r.status_code == 404
    assert "did you mean" in r.get_data(as_text=True) and "planted-features" in r.get_data(as_text=True)
    r = client.get("/api/tasks/planted-feature/leaderboard")
    assert r.status_code == 404 and r.is_json
    assert "did you mean" in r.get_json()["message"]


@pytest.mark.parametrize("path", ["/?split=train", "/tasks/planted-features?split=train",
                                  "/api/tasks/planted-features/leaderboard?split=train"])
def test_bad_split_400(client, path):
    r = client.get(path)
    assert r.status_code == 400
    body = r.get_json()["message"] if r.is_json else r.get_data(as_text=True)
    assert "unknown split" in body and "train" in body


def test_evaluation_page_provenance_and_failed_instance(client, add):
    ev = add(name="sub-a", headline=0.5, status="partial", note="one instance timed out",
             git_commit="0123abcd", device="cuda", sandbox="docker")
    html = client.get(f"/evaluations/{ev}").get_data(as_text=True)
    assert "exceeded the wall-time limit of 900 s" in html
    assert "i-001" in html and "timeout" in html and "i-000" in html
    for text in (hashlib.sha256(b"sub-a").hexdigest(), "0123abcd",
                 "sha256:" + "0" * 64, "0.1.0", "docker", "cuda", "test-cpu", "numpy 2.0.0",
                 "one instance timed out", "partial", "2025-"):
        assert text in html, text
    assert ("phasebench evaluate submissions/sub-a --task planted-features --split dev "
            "--sandbox docker --device cuda") in html
    assert "[0.400, 0.600]" in html


def test_unfinished_evaluation_page_warns(client, add):
    ev = add(name="sub-r", status="running")
    html = client.get(f"/evaluations/{ev}").get_data(as_text=True)
    assert "not a result" in html


def test_a_record_of_a_newer_format_is_shown_with_a_warning(client, add):
    newer = add(name="from-the-future", headline=0.5, record_format=RECORD_FORMAT + 1)
    older = add(name="from-the-past", headline=0.5, record_format=1)
    html = client.get(f"/evaluations/{newer}").get_data(as_text=True)
    assert f"written in format {RECORD_FORMAT + 1}, newer than this site understands" in html
    assert "0.500" in html      # what it shares with this format still shows
    assert "newer than this site" not in client.get(f"/evaluations/{older}").get_data(as_text=True)


def test_unknown_evaluation_404(client):
    assert client.get("/evaluations/999").status_code == 404
    r = client.get("/api/evaluations/999")
    assert r.status_code == 404 and r.is_json and "999" in r.get_json()["message"]


def test_submission_page_lists_all_evaluations(client, add):
    e1 = add(name="sub-a", headline=0.5)
    e2 = add(name="sub-a", headline=0.6, split="test")
    e3 = add(name="sub-a", status="failed")
    add(name="other", headline=0.1)
    html = client.get("/submissions/sub-a").get_data(as_text=True)
    for e in (e1, e2, e3):
        assert f'href="/evaluations/{e}"' in html
    assert "method sub-a" in html and "A. Author" in html and "MIT" in html
    assert "other" not in html
    assert client.get("/submissions/nobody").status_code == 404


def test_html_injection_escaped_everywhere(client, add):
    ev = add(name=XSS, headline=0.9, baseline=True,
             meta={"description": XSS, "authors": [XSS], "license": XSS, "url": "javascript:alert(1)"},
             instances=[{"instance_id": XSS, "group": XSS, "status": "error", "metrics": {XSS: 1.0},
                         "runtime_s": 1.0, "error": f"ValueError: {XSS}"}],
             note=XSS, sandbox=XSS, hardware={XSS: XSS}, library_versions={XSS: XSS},
             groups={XSS: 0.5})
    name_url = client.get("/tasks/planted-features").get_data(as_text=True)
    link = re.search(r'href="(/submissions/[^"]+)"', name_url).group(1)
    pages = ["/", "/?split=dev", "/tasks/planted-features", f"/evaluations/{ev}", link]
    for path in pages:
        r = client.get(path)
        assert r.status_code == 200, path
        html = r.get_data(as_text=True)
        assert XSS not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        # the site needs no JavaScript; the only script is the self-served table enhancement
        without_own = html.replace('<script src="/static/table.js" defer></script>', "")
        assert "<script" not in without_own, path
    sub_html = client.get(link).get_data(as_text=True)
    assert 'href="javascript:' not in sub_html
    # JSON carries the raw string (it is data, not markup)
    assert client.get(f"/api/evaluations/{ev}").get_json()["submission"] == XSS


def test_no_external_resources(client, add):
    add(name="sub-a")
    for path in ("/", "/tasks/planted-features", "/submissions/sub-a"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r'(src|href)="(https?:)?//', html.replace('href="https://example.org"', ""))
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "text/css" in css.content_type


def test_schema_missing_is_503(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    try:
        r = app.test_client().get("/")
        assert r.status_code == 503 and "phasebench db upgrade" in r.get_data(as_text=True)
        r = app.test_client().get("/api/tasks")
        assert r.status_code == 503 and r.is_json
    finally:
        app.extensions["phasebench_db"].engine.dispose()


def test_engine_created_once_per_app(app, client):
    engine = app.extensions["phasebench_db"].engine
    client.get("/")
    client.get("/api/tasks")
    assert app.extensions["phasebench_db"].engine is engine
    assert str(engine.url) == app.config["DATABASE_URL"]


def test_task_page_shows_the_card_section_and_sandbox(client, site_store):
    from tests.leaderboard.conftest import make_evaluation

    make_evaluation(site_store, name="carded")
    html = client.get("/tasks/planted-features").get_data(as_text=True)
    assert "From the dataset card" in html and "Hungarian" in html and "<table" in html
    assert "Sandbox / device" in html


def test_container_image_digest_in_the_provenance(client, add):
    digest = "localhost/phasebench-evaluator@sha256:" + "ab" * 32
    ev = add(name="boxed", headline=0.5, sandbox="docker", sandbox_info={"image": digest, "engine": "podman <5>"})
    html = client.get(f"/evaluations/{ev}").get_data(as_text=True)
    assert digest in html and "podman &lt;5&gt;" in html
    prov = client.get(f"/api/v1/evaluations/{ev}").get_json()["provenance"]
    assert prov["sandbox_info"] == {"image": digest, "engine": "podman <5>"}


def test_evaluation_page_and_api_show_the_declared_breakdowns(client, add, site_store):
    """rare-behavior declares a breakdown by decade of p: the evaluation's stored summary (from the
    real aggregation) is shown as a table under the breakdown's title and returned by the API."""
    from benchmark.stats import aggregate
    from benchmark.task import get_task
    from evaluator.store import Evaluation, session_scope

    meta = get_task("rare-behavior").metadata
    rows = [{"group": "F1", "metrics": {"pinball": 0.125, "estimate_error": 0.5, "is_loss": 0.25, "coverage": 1.0},
             "details": {"decade": d}} for d in (-11, -11, -4)]
    summary = aggregate(meta, rows)
    ev = add(name="rare-x", task="rare-behavior", headline=0.125)
    with session_scope(site_store.engine) as s:
        s.get(Evaluation, ev).metrics = summary
    html = client.get(f"/evaluations/{ev}").get_data(as_text=True)
    assert meta.breakdowns[0].title in html and 'id="breakdown-decade"' in html
    table = html[html.index('id="breakdown-decade"'):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<td>(-?\d+)</td>", table) == ["-11", "-4"]
    api = client.get(f"/api/v1/evaluations/{ev}").get_json()
    assert api["breakdowns"]["decade"]["-11"]["n"] == 2
    assert api["breakdowns"]["decade"]["-4"]["pinball"] == 0.125
