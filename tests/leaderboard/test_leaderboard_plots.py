"""The plots a task declares (TaskMetadata.plots): drawn on the task page from per-instance details
and metrics, and served as JSON and CSV under /api/v1/tasks/<task>/plots/<plot>."""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import event

from leaderboard.plots import MAX_PLOT_SERIES, TOP_PLOTTED, axis_ticks

XSS = "<script>alert(1)</script>"
PF = "/tasks/planted-features"
SE = "/tasks/scaling-exponents"
DENSITY = "/api/v1/tasks/planted-features/plots/recall-vs-density"
SVG_NS = "{http://www.w3.org/2000/svg}"


def pf_instances(recalls: list[float], failed: tuple[int, ...] = ()) -> list[dict]:
    """planted-features instance results with details: n/d cycles 2, 4, 8; L0 cycles 4, 12; the
    ``failed`` ones timed out (worst recall, and no L0, as a task may leave a detail unknown)."""
    out = []
    for k, r in enumerate(recalls):
        bad = k in failed
        out.append({"instance_id": f"dev-{k:03d}-T1", "group": "T1", "status": "timeout" if bad else "ok",
                    "metrics": {"recall@0.9": 0.0 if bad else r}, "runtime_s": 1.0,
                    "error": "exceeded the wall-time limit" if bad else None,
                    "details": {"n_over_d": [2.0, 4.0, 8.0][k % 3], "l0": None if bad else [4.0, 12.0][k % 2]}})
    return out


def se_instances(pairs: list[tuple[float, float | None]]) -> list[dict]:
    return [{"instance_id": f"dev-{k:03d}-A", "group": "A", "status": "ok" if p is not None else "crash",
             "metrics": {"log_loss_error": 0.1}, "runtime_s": 1.0, "error": None,
             "details": {"true_loss": t, "predicted_loss": p}} for k, (t, p) in enumerate(pairs)]


def _svg(html: str, name: str) -> ET.Element:
    start = html.index(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart scatter" role="img" id="plot-{name}"')
    return ET.fromstring(html[start:html.index("</svg>", start) + 6])


def _series(svg: ET.Element) -> dict[str, int]:
    """submission -> number of points drawn."""
    return {g.get("data-submission"): len(list(g)) for g in svg.iter(f"{SVG_NS}g") if g.get("class") == "series"}


# --- axes ---------------------------------------------------------------------------------------
def test_log_axis_has_a_tick_at_every_decade_inside():
    lo, hi, ticks = axis_ticks(0.003, 40.0, log=True)
    assert lo < 0.003 and hi > 40
    majors = [v for v, _, major in ticks if major]
    assert majors == pytest.approx([0.01, 0.1, 1.0, 10.0])
    assert [label for _, label, major in ticks if major] == ["0.01", "0.1", "1", "10"]
    assert all(major for _, _, major in ticks)   # over four decades: no minor ticks


def test_narrow_log_axis_gets_labelled_minor_ticks():
    lo, hi, ticks = axis_ticks(2.0, 4.5, log=True)
    assert lo < 2 and hi > 4.5
    assert [label for _, label, _ in ticks] == ["2", "3", "4", "5"]


def test_linear_axis_has_round_ticks_covering_the_data():
    lo, hi, ticks = axis_ticks(0.03, 0.97, log=False)
    assert (lo, hi) == (0.0, 1.0)
    assert [label for _, label, _ in ticks] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    lo, hi, _ = axis_ticks(3.0, 3.0, log=False)
    assert lo <= 2.5 and hi >= 3.5


# --- the task page ------------------------------------------------------------------------------
def test_task_page_draws_each_declared_plot(client, add):
    add(name="good", headline=0.9, instances=pf_instances([0.9, 0.8, 0.7, 0.95, 0.85, 0.75]))
    add(name="flaky", headline=0.4, instances=pf_instances([0.6, 0.5, 0.4, 0.6, 0.5, 0.4], failed=(1, 4)))
    html = client.get(PF).get_data(as_text=True)
    assert 'id="plots"' in html
    sup, dens = _svg(html, "recall-vs-superposition"), _svg(html, "recall-vs-density")
    assert _series(sup) == {"good": 6, "flaky": 6}        # failed instances still have n/d and a recall
    assert _series(dens) == {"good": 6, "flaky": 4}       # ... but no L0: skipped and counted
    assert "2 not drawn (failed or without the value)" in html
    title = dens.find(f"{SVG_NS}title")
    assert title.text == "Recall against density" and dens.get("role") == "img"
    assert "(log scale)" in "".join(sup.itertext()) and "(log scale)" not in "".join(dens.itertext())
    point = next(c for c in sup.iter(f"{SVG_NS}circle") if c.find(f"{SVG_NS}title") is not None)
    assert point.find(f"{SVG_NS}title").text.startswith("good · dev-000-T1: x = 2, y = 0.9")
    assert "/api/v1/tasks/planted-features/plots/recall-vs-density?split=dev" in html


def test_points_sit_where_their_values_say(client, add):
    """y = recall maps linearly onto the frame: higher recall, higher on the page (smaller y)."""
    add(name="m", headline=0.5, instances=pf_instances([0.0, 0.5, 1.0]))
    svg = _svg(client.get(PF).get_data(as_text=True), "recall-vs-superposition")
    frame = next(r for r in svg.iter(f"{SVG_NS}rect") if r.get("class") == "frame")
    top, bottom = float(frame.get("y")), float(frame.get("y")) + float(frame.get("height"))
    ys = [float(c.get("cy")) for c in svg.iter(f"{SVG_NS}circle") if c.find(f"{SVG_NS}title") is not None]
    assert ys[0] == pytest.approx(bottom, abs=0.1) and ys[2] == pytest.approx(top, abs=0.1)
    assert ys[1] == pytest.approx((top + bottom) / 2, abs=0.1)
    xs = [float(c.get("cx")) for c in svg.iter(f"{SVG_NS}circle") if c.find(f"{SVG_NS}title") is not None]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1], abs=0.2)   # 2, 4, 8 equally spaced on a log axis


def test_log_log_plot_with_diagonal_skips_failed_and_non_positive(client, add):
    add(name="fit", headline=0.1, task="scaling-exponents",
        instances=se_instances([(2.0, 2.1), (3.0, 2.9), (1.5, None), (2.5, 0.0)]))
    html = client.get(SE).get_data(as_text=True)
    svg = _svg(html, "predicted-vs-true-loss")
    assert _series(svg) == {"fit": 2}
    assert any(p.get("class") == "diagonal" for p in svg.iter(f"{SVG_NS}polyline"))
    assert "2 not drawn (failed or without the value, or not positive on a log axis)" in html


def test_shows_the_top_submissions_and_the_baselines(client, add):
    for k in range(10):
        add(name=f"m{k}", headline=k / 10, baseline=k in (0, 1, 2, 3), instances=pf_instances([k / 10] * 3))
    html = client.get(PF).get_data(as_text=True)
    shown = list(_series(_svg(html, "recall-vs-density")))
    top = [f"m{k}" for k in range(9, 9 - TOP_PLOTTED, -1)]
    assert shown == top + ["m3", "m2", "m1"][:MAX_PLOT_SERIES - TOP_PLOTTED]
    assert "(baseline)" in html


def test_submission_names_are_escaped_in_plots(client, add):
    add(name=XSS, headline=0.5, instances=pf_instances([0.5, 0.6]))
    html = client.get(PF).get_data(as_text=True)
    assert XSS not in html
    assert _series(_svg(html, "recall-vs-density")) == {XSS: 2}   # parsed back: it was text


def test_no_plot_drawn_without_instance_details(client, add):
    add(name="old-format", headline=0.5)          # instance results stored before details existed
    html = client.get(PF).get_data(as_text=True)
    assert 'id="plot-recall-vs-density"' not in html and "Recall against density: nothing to draw yet" in html


def test_plots_read_in_one_query_for_all_plots(app, client, add):
    for k in range(3):
        add(name=f"m{k}", headline=k / 10, instances=pf_instances([0.1, 0.2]))
    engine = app.extensions["phasebench_db"].engine
    statements: list[str] = []
    listener = lambda conn, cursor, stmt, *a: statements.append(stmt)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        client.get(PF)
        first = [s for s in statements if "instance_results" in s and "details" in s]
        statements.clear()
        client.get(DENSITY)
        client.get(DENSITY + "?format=csv")
        again = [s for s in statements if "instance_results" in s]
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(first) == 1 and again == []


# --- the API ------------------------------------------------------------------------------------
def test_plot_json_and_csv_carry_the_points(client, add):
    ev = add(name="good", headline=0.9, instances=pf_instances([0.9, 0.8, 0.7], failed=(2,)))
    data = client.get(DENSITY).get_json()
    assert data["plot"]["x"] == "l0" and data["plot"]["y"] == "metric:recall@0.9"
    assert data["n_points"] == 2 and data["n_skipped"] == 1
    (series,) = data["series"]
    assert series["evaluation_id"] == ev and series["rank"] == 1 and series["skipped"] == 1
    assert [(p["instance_id"], p["x"], p["y"]) for p in series["points"]] == [("dev-000-T1", 4.0, 0.9),
                                                                             ("dev-001-T1", 12.0, 0.8)]
    resp = client.get(DENSITY + "?format=csv")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["instance_id"], r["l0"], r["metric:recall@0.9"]) for r in rows] == [
        ("dev-000-T1", "4.0", "0.9"), ("dev-001-T1", "12.0", "0.8")]


def test_plot_api_lists_plots_and_chooses_evaluations(client, add):
    a = add(name="a", headline=0.9, instances=pf_instances([0.9]))
    b = add(name="b", headline=0.1, instances=pf_instances([0.1, 0.2]))
    listing = client.get("/api/v1/tasks/planted-features/plots").get_json()
    assert [p["name"] for p in listing["plots"]] == ["recall-vs-superposition", "recall-vs-density"]
    assert listing["plots"][1]["url"] == DENSITY
    assert client.get("/api/v1/tasks/planted-features").get_json()["plots"][0]["x"] == "n_over_d"
    chosen = client.get(f"{DENSITY}?evaluations={b}").get_json()
    assert [s["submission"] for s in chosen["series"]] == ["b"]
    both = client.get(f"{DENSITY}?evaluations={b},{a}").get_json()
    assert [s["submission"] for s in both["series"]] == ["b", "a"]


@pytest.mark.parametrize("query,code,needle", [
    ("?evaluations=x", 400, "?evaluations="), ("?evaluations=999", 400, "999 not on the planted-features"),
    ("?evaluations=" + ",".join(["1"] * 21), 400, "1 to 20"), ("?split=nope", 400, "split"),
    ("?format=xml", 400, "format")])
def test_plot_api_bad_arguments(client, add, query, code, needle):
    add(name="a", headline=0.9, instances=pf_instances([0.9]))
    r = client.get(DENSITY + query)
    assert r.status_code == code and r.is_json and needle in r.get_json()["message"]


def test_unknown_plot_is_404_naming_the_plots(client):
    r = client.get("/api/v1/tasks/planted-features/plots/nope")
    assert r.status_code == 404 and "recall-vs-density" in r.get_json()["message"]
    assert client.get("/api/v1/tasks/nope/plots/x").status_code == 404
