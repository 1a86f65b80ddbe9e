"""Issue 6: stale sections, rank intervals, compare, overview, API v1 + OpenAPI, CSV, sorting and
filtering, the submission guide and the plots."""
from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from sqlalchemy import event

from leaderboard import create_app
from benchmark.stats import paired_difference, rank_intervals

from .conftest import noisy_instances
from .leaderboard_helpers import api_order, page_order

XSS = "<script>alert(1)</script>"
PF = "/tasks/planted-features"
API_LB = "/api/v1/tasks/planted-features/leaderboard"


def _csv(resp) -> list[dict[str, str]]:
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def _three_methods(add, n: int = 80):
    """'best' is clearly better; 'noise-a' and 'noise-b' differ only by per-instance noise."""
    rng = np.random.default_rng(7)
    base = rng.uniform(0.3, 0.7, n)                      # instance difficulty, shared by all methods
    best = np.clip(base + 0.3 + rng.normal(0, 0.02, n), 0, 1)
    a = np.clip(base + rng.normal(0, 0.1, n), 0, 1)
    b = np.clip(base + rng.normal(0, 0.1, n), 0, 1)
    ids = {}
    for name, vals in (("best", best), ("noise-a", a), ("noise-b", b)):
        ids[name] = add(name=name, headline=float(vals.mean()), instances=noisy_instances([float(v) for v in vals]))
    return ids, (best, a, b)


# --- 1. stale rows ------------------------------------------------------------------------------
def test_stale_rows_in_their_own_section(client, add):
    add(name="current-low", headline=0.3)
    add(name="current-high", headline=0.6)
    add(name="old-high", headline=0.99, task_version=0)
    html = client.get(PF).get_data(as_text=True)
    assert page_order(html) == ["current-high", "current-low"]
    assert "Stale (task v0)" in html
    stale = html[html.index("Stale (task v0)"):]
    assert 'data-stale-submission="old-high"' in stale
    data = client.get(API_LB).get_json()
    assert api_order(data) == ["current-high", "current-low"] and [r["rank"] for r in data["rows"]] == [1, 2]
    assert [s["task_version"] for s in data["stale"]] == [0]
    assert [(r["submission"], r["rank"], r["rank_interval"]) for r in data["stale"][0]["rows"]] == \
        [("old-high", None, None)]
    # the overview's leader and count use current rows only
    index = client.get("/").get_data(as_text=True)
    card = index[index.index("planted-features"):]
    card = card[:card.index("</section>")]
    assert "current-high" in card and "old-high" not in card and "1 on older task versions" in card
    rows = _csv(client.get(f"{PF}/leaderboard.csv"))
    assert [(r["section"], r["submission"]) for r in rows] == [
        ("current", "current-high"), ("current", "current-low"), ("stale (task v0)", "old-high")]


def test_legacy_api_alias_has_same_payload(client, add):
    add(name="x", headline=0.4)
    add(name="y", headline=0.2, task_version=0)
    assert client.get("/api/tasks/planted-features/leaderboard").get_json() == client.get(API_LB).get_json()


# --- 2. ties and rank intervals -----------------------------------------------------------------
def test_rank_intervals_unit_two_noisy_one_clear():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.3, 0.7, 80)
    rows = [base + 0.3, base + rng.normal(0, 0.1, 80), base + rng.normal(0, 0.1, 80)]
    per = [{f"i{k}": float(v) for k, v in enumerate(r)} for r in rows]
    order = sorted(range(3), key=lambda i: -rows[i].mean())
    ivs = rank_intervals([per[i] for i in order], higher_is_better=True)
    assert (ivs[0].low, ivs[0].high) == (1, 1) and not ivs[0].tied_with_previous
    assert (ivs[1].low, ivs[1].high) == (2, 3) and (ivs[2].low, ivs[2].high) == (2, 3)
    assert not ivs[1].tied_with_previous and ivs[2].tied_with_previous
    # seeded: the same inputs give the same intervals
    assert rank_intervals([per[i] for i in order], True) == ivs
    # the direction comes from the metric: lower-is-better flips the order
    flipped = rank_intervals([per[i] for i in reversed(order)], higher_is_better=False)
    assert (flipped[2].low, flipped[2].high) == (3, 3)


def test_rank_intervals_skip_none_values():
    # A beats B on every instance both have; A's None (not applicable) instance is left out, not a 0
    a = {f"i{k}": 1.0 for k in range(20)} | {"na": None}
    b = {f"i{k}": 0.0 for k in range(20)} | {"na": 0.5}
    ivs = rank_intervals([a, b], higher_is_better=True)
    assert [(i.low, i.high, i.tied_with_previous) for i in ivs] == [(1, 1, False), (2, 2, False)]
    # two identical methods are tied over their whole range
    same = rank_intervals([b, dict(b)], higher_is_better=True)
    assert [(i.low, i.high) for i in same] == [(1, 1), (1, 1)] and same[1].tied_with_previous
    assert rank_intervals([], True) == []


def test_task_page_shows_ties(client, add):
    _three_methods(add)
    html = client.get(PF).get_data(as_text=True)
    assert page_order(html)[0] == "best"
    rows = {m.group(1): m.group(0) for m in re.finditer(r'data-submission="([^"]+)">.*?</tr>', html, re.S)}
    assert "rank 1<" in rows["best"]
    assert "rank 2–3" in rows["noise-a"] and "rank 2–3" in rows["noise-b"]
    assert "≈" in rows[page_order(html)[2]]
    data = client.get(API_LB).get_json()
    labels = {r["submission"]: r["rank_interval"]["label"] for r in data["rows"]}
    assert labels == {"best": "1", "noise-a": "2–3", "noise-b": "2–3"}
    assert data["rank_intervals"]["resamples"] == 2000
    csv_rows = {r["submission"]: r for r in _csv(client.get(f"{API_LB}?format=csv"))}
    assert (csv_rows["noise-a"]["rank_low"], csv_rows["noise-a"]["rank_high"]) == ("2", "3")


def test_instance_rows_read_in_one_query_and_cached(app, client, add):
    _three_methods(add, n=20)
    engine = app.extensions["phasebench_db"].engine
    statements: list[str] = []
    listener = lambda conn, cursor, stmt, *a: statements.append(stmt)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(PF).status_code == 200
        first = [s for s in statements if "instance_results" in s]
        statements.clear()
        assert client.get(API_LB).status_code == 200
        assert client.get(PF + "?sort=name").status_code == 200
        second = [s for s in statements if "instance_results" in s]
        statements.clear()
        assert client.get("/").status_code == 200
        overview = [s for s in statements if "instance_results" in s]
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    # one query for the rank intervals, one for the task's declared plots; then all cached
    assert len(first) == 2 and second == [] and overview == []


def test_a_new_result_reads_only_its_own_instances_and_ranks_as_a_fresh_app(app, client, add, site_db_url):
    _three_methods(add, n=20)
    assert client.get(API_LB).status_code == 200              # every evaluation read once
    rng = np.random.default_rng(3)
    newcomer = add(name="newcomer", headline=0.9, instances=noisy_instances([float(v) for v in rng.uniform(0.8, 1, 20)]))
    engine = app.extensions["phasebench_db"].engine
    statements: list[tuple[str, object]] = []
    listener = lambda conn, cursor, stmt, params, *a: statements.append((stmt, params))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        warm = client.get(API_LB).get_json()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    reads = [tuple(params) for stmt, params in statements if "FROM instance_results" in stmt]
    # one query, for the new evaluation only (its JSON path and its id are the parameters)
    assert reads == [('$."recall@0.9"', newcomer)], reads
    fresh = create_app({"TESTING": True, "DATABASE_URL": site_db_url}).test_client().get(API_LB).get_json()
    assert [(r["submission"], r["rank"], r["rank_interval"]) for r in warm["rows"]] == \
        [(r["submission"], r["rank"], r["rank_interval"]) for r in fresh["rows"]]
    assert warm["rows"][0]["submission"] == "newcomer"


def test_a_new_result_computes_only_its_own_skill_and_matches_a_fresh_app(app, client, add, site_db_url, monkeypatch):
    import evaluator.results.board as board_module
    _three_methods(add, n=20)
    rng = np.random.default_rng(4)
    add(name="floor", headline=0.3, meta={"floor": True, "baseline": False},
        instances=noisy_instances([float(v) for v in rng.uniform(0.2, 0.4, 20)]))
    assert client.get(API_LB).get_json()["skill"]["floor"] == "floor"
    newcomer = add(name="newcomer", headline=0.9, instances=noisy_instances([float(v) for v in rng.uniform(0.8, 1, 20)]))
    computed: list[dict] = []
    real = board_module.skill_against_floor

    def counting(method, *args, **kwargs):
        computed.append(method)
        return real(method, *args, **kwargs)
    monkeypatch.setattr(board_module, "skill_against_floor", counting)
    warm = client.get(API_LB).get_json()
    assert len(computed) == 1 and len(computed[0]) == 20          # the newcomer's skill alone
    monkeypatch.setattr(board_module, "skill_against_floor", real)
    fresh = create_app({"TESTING": True, "DATABASE_URL": site_db_url}).test_client().get(API_LB).get_json()
    assert [(r["submission"], r["skill"]) for r in warm["rows"]] == [(r["submission"], r["skill"]) for r in fresh["rows"]]
    assert [r["evaluation_id"] for r in warm["rows"] if r["skill"]][0] == newcomer
    assert all(r["skill"] is not None for r in warm["rows"])


# --- 3. compare ---------------------------------------------------------------------------------
def test_compare_paired_differences(client, add):
    ids, (best, a, _) = _three_methods(add)
    r = client.get(f"/api/v1/compare?a={ids['best']}&b={ids['noise-a']}")
    data = r.get_json()
    head = data["metrics"]["recall@0.9"]
    assert head["n"] == 80 and head["diff"] == pytest.approx(float((best - a).mean()))
    assert head["ci_low"] < head["diff"] < head["ci_high"] and head["ci_low"] > 0
    assert head["verdict"] == "A better" and head["significant"] is True
    assert set(data["groups"]) == {"T0", "T1", "T2"}
    t0 = [k for k in range(80) if k % 3 == 0]
    assert data["groups"]["T0"]["recall@0.9"]["diff"] == pytest.approx(float((best[t0] - a[t0]).mean()))
    assert len(data["instances"]) == 80 and data["instances"][0]["diff"] == pytest.approx(best[0] - a[0])
    noisy = client.get(f"/api/v1/compare?a={ids['noise-a']}&b={ids['noise-b']}").get_json()
    assert noisy["metrics"]["recall@0.9"]["verdict"] == "not separable"
    html = client.get(f"/compare?a={ids['best']}&b={ids['noise-a']}").get_data(as_text=True)
    for text in ("Per metric", "Per group", "Per instance", "A better", "i-079", "80 shared instances"):
        assert text in html, text
    metrics_csv = _csv(client.get(f"/api/v1/compare?a={ids['best']}&b={ids['noise-a']}&format=csv&table=metrics"))
    assert metrics_csv[0]["metric"] == "recall@0.9" and float(metrics_csv[0]["diff"]) == pytest.approx(head["diff"])
    inst_csv = _csv(client.get(f"/api/v1/compare?a={ids['best']}&b={ids['noise-a']}&format=csv"))
    assert len(inst_csv) == 80
    groups_csv = _csv(client.get(f"/api/v1/compare?a={ids['best']}&b={ids['noise-a']}&format=csv&table=groups"))
    assert {r["group"] for r in groups_csv} == {"T0", "T1", "T2"}


def test_paired_difference_only_shared_pairs():
    d = paired_difference([(1.0, 0.5), (None, 0.2), (0.4, float("nan")), (0.6, 0.1)])
    assert d.n == 2 and d.diff == pytest.approx(0.5) and d.value_a == pytest.approx(0.8)
    assert paired_difference([]).diff is None


def test_compare_different_tasks_is_a_clear_error(client, add):
    a = add(name="a", headline=0.5)
    b = add(name="b", task="some-other-task", headline=0.5)
    r = client.get(f"/compare?a={a}&b={b}")
    assert r.status_code == 400
    assert "same task" in r.get_data(as_text=True) and "some-other-task" in r.get_data(as_text=True)
    r = client.get(f"/api/v1/compare?a={a}&b={b}")
    assert r.status_code == 400 and "same task" in r.get_json()["message"]
    assert client.get("/compare").status_code == 400
    assert client.get(f"/compare?a={a}&b=x").status_code == 400
    assert client.get(f"/api/v1/compare?a={a}&b=99999").status_code == 404


def test_task_page_links_to_compare(client, add):
    add(name="a", headline=0.5)
    b = add(name="b", headline=0.7)
    html = client.get(PF).get_data(as_text=True)
    assert 'action="/compare"' in html and 'name="a"' in html and 'name="b"' in html
    link = re.search(r'href="(/compare\?a=\d+&amp;b=\d+)"', html).group(1).replace("&amp;", "&")
    assert link.endswith(f"b={b}") and client.get(link).status_code == 200


# --- 4. overview and overall ranking ------------------------------------------------------------
def _one(value: float, group: str, metric: str) -> list[dict]:
    return noisy_instances([value], groups=(group,), metric=metric)


def test_overall_ranking_is_mean_skill_against_each_tasks_floor(client, add, second_task):
    # planted-features (recall, best 1): floor 0.5, so x 0.9 has skill 0.8 and y 0.8 skill 0.6;
    # fake-second (error, best 0): floor 0.4, so x 0.2 has skill 0.5 and y 0.1 skill 0.75
    pf = "recall@0.9"
    add(name="floor-pf", headline=0.5, meta={"floor": True, "baseline": False}, instances=_one(0.5, "T0", pf))
    add(name="x", headline=0.9, instances=_one(0.9, "T0", pf))
    add(name="y", headline=0.8, instances=_one(0.8, "T0", pf))
    add(name="z", headline=0.5, instances=_one(0.5, "T0", pf))
    add(name="floor-2", task=second_task, headline=0.4, groups={"easy": 0.4}, meta={"floor": True},
        instances=_one(0.4, "easy", "error"))
    add(name="x", task=second_task, headline=0.2, groups={"easy": 0.2}, instances=_one(0.2, "easy", "error"))
    add(name="y", task=second_task, headline=0.1, groups={"easy": 0.1}, instances=_one(0.1, "easy", "error"))
    add(name="only-second", task=second_task, headline=0.9, groups={"easy": 0.9},
        instances=_one(0.9, "easy", "error"))
    data = client.get("/api/v1/overall").get_json()
    assert "skill" in data["rule"] and "skipped a task" in data["rule"]
    got = {r["submission"]: r for r in data["rows"]}
    assert "floor-pf" not in got and "floor-2" not in got          # floors are never ranked
    assert got["x"]["skills"] == pytest.approx({"planted-features": 0.8, second_task: 0.5})
    assert got["y"]["mean_skill"] == pytest.approx((0.6 + 0.75) / 2)
    # y (0.675) above x (0.65) although x has the better mean rank: the ranking is by skill
    assert [r["submission"] for r in data["rows"]] == ["y", "x", "z", "only-second"]
    assert got["z"]["skills"] == {"planted-features": 0.0}          # matching the floor scores zero
    assert got["only-second"]["skills"][second_task] == -1.0        # 0.9 vs 0.4 is −1.25, clipped
    html = client.get("/").get_data(as_text=True)
    n_tasks = len(data["tasks"])
    assert "Overall ranking" in html and "skipped a task" in html and f"1 of {n_tasks}" in html
    # each task card: headline metric, direction and leader
    card = html[html.index("fake-second"):]
    card = card[:card.index("</section>")]
    assert "error" in card and "↓" in card
    rows = _csv(client.get("/api/v1/overall?format=csv"))
    assert rows[0]["submission"] == "y" and float(rows[0]["skill:planted-features"]) == pytest.approx(0.6)
    assert rows[2]["skill:fake-second"] == ""


def test_a_task_without_a_floor_does_not_enter_the_overall_ranking(client, add):
    add(name="a", headline=0.5)
    assert client.get("/api/v1/overall").get_json()["rows"] == []
    html = client.get(PF).get_data(as_text=True)
    assert 'id="floors"' not in html and "Skill vs" not in html


def test_floors_and_in_sample_rows_are_shown_apart_and_never_ranked(client, add):
    pf = "recall@0.9"
    add(name="const", headline=0.3, meta={"floor": True}, instances=noisy_instances([0.3] * 12, metric=pf))
    add(name="lookup", headline=0.4, meta={"floor": True}, instances=noisy_instances([0.4] * 12, metric=pf))
    # a floor fitted on dev answers scores in-sample there: never the zero of skill
    add(name="memorised", headline=0.9, meta={"floor": True, "fitted_on": ["dev"]},
        instances=noisy_instances([0.9] * 12, metric=pf))
    add(name="fitted", headline=0.95, meta={"fitted_on": ["dev"]}, instances=noisy_instances([0.95] * 12, metric=pf))
    add(name="method", headline=0.6,
        instances=noisy_instances([0.55, 0.65] * 6, metric=pf))
    data = client.get(API_LB).get_json()
    assert [r["submission"] for r in data["rows"]] == ["method"] and data["rows"][0]["rank"] == 1
    assert [r["submission"] for r in data["floors"]] == ["memorised", "lookup", "const"]      # best first
    assert all(r["rank"] is None and r["floor"] for r in data["floors"])
    assert [r["submission"] for r in data["in_sample"]] == ["fitted"] and data["in_sample"][0]["rank"] is None
    assert data["skill"]["floor"] == "lookup"
    skill = data["rows"][0]["skill"]
    assert skill["skill"] == pytest.approx((0.6 - 0.4) / (1 - 0.4)) and skill["beats_floor"]
    assert skill["gain"] == pytest.approx(0.2) and skill["gain_ci_low"] > 0
    html = client.get(PF).get_data(as_text=True)
    assert 'id="floors"' in html and 'id="in-sample"' in html and "Skill vs lookup" in html
    ranking = html[html.index('id="ranking"'):html.index('id="floors"')]
    assert "fitted" not in ranking and "const" not in ranking
    rows = _csv(client.get(PF + "/leaderboard.csv"))
    assert [(r["section"], r["submission"]) for r in rows] == [
        ("current", "method"), ("floor", "memorised"), ("floor", "lookup"), ("floor", "const"),
        ("in-sample", "fitted")]
    # on the test split the same method is not in-sample: fitted_on names dev only
    add(name="fitted", split="test", headline=0.95, meta={"fitted_on": ["dev"]},
        instances=noisy_instances([0.95] * 12, metric=pf))
    test_rows = client.get(API_LB + "?split=test").get_json()["rows"]
    assert [r["submission"] for r in test_rows] == ["fitted"]


def test_unknown_tasks_in_the_database_are_ignored(client, add):
    add(name="a", headline=0.5)
    add(name="floor", headline=0.0, meta={"floor": True})
    add(name="ghost", task="no-longer-registered", headline=0.9)
    assert client.get("/").status_code == 200
    assert "ghost" not in client.get("/").get_data(as_text=True)
    assert [r["submission"] for r in client.get("/api/v1/overall").get_json()["rows"]] == ["a"]


# --- 5. API v1, OpenAPI, CSV --------------------------------------------------------------------
def _v1_paths(app) -> set[str]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            out.add(re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):]))
    return out


def test_openapi_covers_every_v1_route(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = _v1_paths(app)
    assert {"/tasks", "/tasks/{task}/leaderboard", "/compare", "/overall", "/submissions/{name}",
            "/evaluations/{evaluation_id}", "/openapi.json"} <= paths
    assert paths == set(doc["paths"]), paths ^ set(doc["paths"])
    for path, item in doc["paths"].items():
        assert "get" in item and "200" in item["get"]["responses"], path


def test_v1_endpoints_and_aliases(client, add):
    ev = add(name="sub-a", headline=0.7)
    for path in ["/api/v1/tasks", "/api/v1/tasks/planted-features", API_LB, f"/api/v1/evaluations/{ev}",
                 "/api/v1/submissions/sub-a", "/api/v1/overall", "/api/v1/openapi.json",
                 "/api/tasks", "/api/tasks/planted-features", "/api/evaluations/" + str(ev)]:
        r = client.get(path)
        assert r.status_code == 200 and r.is_json, path
    sub = client.get("/api/v1/submissions/sub-a").get_json()
    assert sub["name"] == "sub-a" and sub["evaluations"][0]["evaluation_id"] == ev
    assert client.get("/api/v1/submissions/nope").status_code == 404
    assert client.get(f"{API_LB}?format=xml").status_code == 400


def test_csv_downloads_parse(client, add):
    ev = add(name="=cmd|' /C calc'!A0", headline=0.7, metrics={"mmcs": 0.875})
    add(name="plain", headline=0.6)
    rows = _csv(client.get(f"{PF}/leaderboard.csv"))
    assert rows[0]["submission"].startswith("'=")  # spreadsheet formula neutralised
    assert rows[0]["recall@0.9"] == "0.7" and rows[0]["mmcs"] == "0.875" and rows[0]["rank"] == "1"
    assert "group:T0" in rows[0]
    assert _csv(client.get(f"{API_LB}?format=csv")) == rows
    tasks = _csv(client.get("/api/v1/tasks?format=csv"))
    by_name = {t["name"]: t for t in tasks}     # every registered task, in registry order
    assert by_name["planted-features"]["higher_is_better"] == "true"
    inst = _csv(client.get(f"/api/v1/evaluations/{ev}?format=csv"))
    assert [r["instance_id"] for r in inst] == ["i-000", "i-001"] and inst[1]["status"] == "timeout"
    evs = _csv(client.get("/api/v1/submissions/plain?format=csv"))
    assert evs[0]["task"] == "planted-features" and evs[0]["finished"] == "true"
    page = client.get(PF).get_data(as_text=True)
    assert "/tasks/planted-features/leaderboard.csv" in page


# --- 6. server-side sort and filter -------------------------------------------------------------
def test_server_side_sort_and_filter(client, add):
    add(name="beta", headline=0.5, metrics={"mmcs": 0.1})
    add(name="alpha", headline=0.3, metrics={"mmcs": 0.9})
    add(name="gamma", headline=0.9, metrics={"mmcs": 0.5})
    order = lambda q: page_order(client.get(PF + q).get_data(as_text=True))  # noqa: E731
    assert order("") == ["gamma", "beta", "alpha"]
    assert order("?sort=name") == ["alpha", "beta", "gamma"]
    assert order("?sort=name&order=desc") == ["gamma", "beta", "alpha"]
    assert order("?sort=mmcs") == ["alpha", "gamma", "beta"]          # higher is better: best first
    assert order("?sort=mmcs&order=asc") == ["beta", "gamma", "alpha"]
    assert order("?q=ALP") == ["alpha"]
    html = client.get(PF + "?sort=name").get_data(as_text=True)
    # clicking the active column again reverses it; ranks stay the leaderboard's
    assert 'href="/tasks/planted-features?sort=name&amp;order=desc"' in html
    assert re.search(r'data-submission="alpha">\s*<td class="num" data-v="3">3</td>', html)
    assert client.get(PF + "?sort=nope").status_code == 400
    assert client.get(PF + "?order=sideways").status_code == 400
    assert client.get(PF + "?page=0").status_code == 400
    assert "No current-version submission matches" in client.get(PF + "?q=zzz").get_data(as_text=True)
    assert '<script src="/static/table.js" defer></script>' in html
    js = client.get("/static/table.js")
    assert js.status_code == 200 and b"data-complete" in js.data


def test_pagination(client, add, monkeypatch):
    from leaderboard.views import pages
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    for i in range(5):
        add(name=f"s{i}", headline=i / 10)
    assert page_order(client.get(PF).get_data(as_text=True)) == ["s4", "s3"]
    html = client.get(PF + "?page=3").get_data(as_text=True)
    assert page_order(html) == ["s0"] and 'data-complete="false"' in html
    full = client.get(PF + "?all=1").get_data(as_text=True)
    assert len(page_order(full)) == 5 and 'data-complete="true"' in full


# --- 7. how to submit ---------------------------------------------------------------------------
def test_submit_page_renders_the_guide(client):
    html = client.get("/submit").get_data(as_text=True)
    assert "<h1>Submitting a method to PhaseBench</h1>" in html and "submission.yaml" in html


def test_submit_page_escapes_raw_html_and_404s(tmp_path, site_engine, site_db_url):
    guide = tmp_path / "README.md"
    guide.write_text(f"# Guide\n\n{XSS}\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))\n")
    app = create_app({"TESTING": True, "DATABASE_URL": site_db_url, "SUBMISSIONS_README": str(guide)})
    html = app.test_client().get("/submit").get_data(as_text=True)
    assert "<h1>Guide</h1>" in html and XSS not in html and "&lt;script&gt;" in html
    assert "<img" not in html and 'href="javascript:' not in html
    app.config["SUBMISSIONS_README"] = str(tmp_path / "missing.md")
    r = app.test_client().get("/submit")
    assert r.status_code == 404 and "submissions/README.md" in r.get_data(as_text=True)
    app.extensions["phasebench_db"].engine.dispose()


# --- 8. plots -----------------------------------------------------------------------------------
def test_task_plot_svg(client, add):
    add(name=XSS, headline=0.8, groups={"T0": 0.9, "T1": 0.7, "T2": 0.2})
    add(name="other", headline=0.5, groups={"T0": 0.6, "T1": 0.5})
    html = client.get(PF).get_data(as_text=True)
    assert "<svg" in html and "recall@0.9 per tier" in html and XSS not in html
    svg = client.get(f"{PF}/plot.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    text = svg.get_data(as_text=True)
    assert text.count("<circle") >= 5 + 2 and ">T2<" in text and "&lt;script&gt;" in text and XSS not in text
    import xml.etree.ElementTree as ET
    ET.fromstring(text)  # well-formed


def test_plot_404_when_empty(client):
    assert client.get(f"{PF}/plot.svg").status_code == 404
    assert "<svg" not in client.get(PF).get_data(as_text=True)
