"""Real-browser tests: Debian's chromium driven by Playwright against the app served on 127.0.0.1.

Screenshots at desktop and phone widths land in tests/leaderboard/artifacts/ (git-ignored).
Playwright's own browser download is never used (``executable_path`` points at the system one).
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from .conftest import make_evaluation, noisy_instances

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"

try:
    from playwright.sync_api import sync_playwright
    _missing = None
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None
    _missing = "the playwright Python package is not installed (pip install playwright)"
if _missing is None and not Path(CHROMIUM).exists():
    _missing = f"no chromium at {CHROMIUM} (run scripts/install-chromium)"

pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _with_details(instances: list[dict]) -> list[dict]:
    """planted-features plot details (n/d cycling 2, 4, 8; L0 cycling 4, 8, 12) on each instance."""
    return [{**inst, "details": {"n_over_d": [2.0, 4.0, 8.0][k % 3], "l0": [4.0, 8.0, 12.0][(k // 3) % 3]}}
            for k, inst in enumerate(instances)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from werkzeug.serving import make_server

    from evaluator.store import make_engine, upgrade
    from leaderboard import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'results.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    values = {"alpha": 0.62, "bravo": 0.81, "charlie": 0.45, "delta-<b>x</b>": 0.7}
    for i, (name, v) in enumerate(values.items()):
        make_evaluation(engine, name=name, headline=v, baseline=(name == "charlie"),
                        metrics={"mmcs": 1 - v}, groups={"T0": v + 0.1, "T1": v, "T2": v - 0.2},
                        instances=_with_details(noisy_instances([min(1.0, max(0.0, v + 0.05 * ((k * (i + 3)) % 5 - 2)))
                                                                 for k in range(30)])))
    make_evaluation(engine, name="old-run", headline=0.95, task_version=0)
    engine.dispose()
    app = create_app({"DATABASE_URL": url})
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(5)
    app.extensions["phasebench_db"].engine.dispose()


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _names(page) -> list[str]:
    return page.eval_on_selector_all("#ranking tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.submission)")


def test_sort_filter_navigate_compare(server, browser):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{server}/tasks/planted-features")
    assert _names(page) == ["bravo", "delta-<b>x</b>", "alpha", "charlie"]
    assert page.locator("text=Stale (task v0)").is_visible()
    page.screenshot(path=str(ARTIFACTS / "task-desktop.png"), full_page=True)

    # client-side sort (no navigation): by name, then again to reverse
    page.click("#ranking th[data-key=name] a.sort")
    assert _names(page) == ["alpha", "bravo", "charlie", "delta-<b>x</b>"]
    assert "sort=name" in page.url
    page.click("#ranking th[data-key=name] a.sort")
    assert _names(page) == ["delta-<b>x</b>", "charlie", "bravo", "alpha"]
    page.click("#ranking th[data-key=mmcs] a.sort")      # higher is better: best first
    assert _names(page) == ["charlie", "alpha", "delta-<b>x</b>", "bravo"]

    # client-side filter
    page.fill("#filter", "ha")
    assert _names(page) == ["charlie", "alpha"]
    assert page.inner_text("#ranking-count") == "2 of 4 shown"
    page.fill("#filter", "")
    assert len(_names(page)) == 4

    # the escaped name shows as text, never as markup
    assert page.locator("#ranking b").count() == 0

    # navigate: submission page, then its evaluation
    page.click("#ranking a:text-is('alpha')")
    page.wait_for_url("**/submissions/alpha")
    assert page.locator("h1").inner_text().startswith("alpha")
    page.click("table.meta a >> nth=0")
    page.wait_for_url("**/evaluations/*")
    assert "Provenance" in page.content()
    page.screenshot(path=str(ARTIFACTS / "evaluation-desktop.png"), full_page=True)

    # compare via the form on the task page
    page.goto(f"{server}/tasks/planted-features")
    page.select_option("#cmp-b", index=2)
    page.click("form.compare button")
    page.wait_for_url("**/compare?*")
    assert page.locator("#compare-metrics").is_visible() and "A − B" in page.content()
    page.screenshot(path=str(ARTIFACTS / "compare-desktop.png"), full_page=True)
    page.close()


def test_works_without_javascript(server, browser):
    ctx = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = ctx.new_page()
    page.goto(f"{server}/tasks/planted-features")
    page.click("#ranking th[data-key=name] a.sort")          # a real link: the server sorts
    page.wait_for_url("**sort=name**")
    assert _names(page) == ["alpha", "bravo", "charlie", "delta-<b>x</b>"]
    page.fill("#filter", "rav")
    page.click("form.filter button")
    page.wait_for_url("**q=rav**")
    assert _names(page) == ["bravo"]
    ctx.close()


@pytest.mark.parametrize("path,name", [("/", "overview"), ("/tasks/planted-features", "task"),
                                       ("/submit", "submit")])
def test_phone_width_screenshots(server, browser, path, name):
    page = browser.new_page(viewport=PHONE, device_scale_factor=1, is_mobile=True)
    page.goto(server + path)
    assert page.locator("h1").is_visible()
    # the page itself does not scroll sideways; wide tables scroll inside their own box
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{path} is {overflow}px wider than the phone viewport"
    page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    page.close()
    desk = browser.new_page(viewport=DESKTOP)
    desk.goto(server + path)
    desk.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    desk.close()


def test_no_requests_leave_the_machine(server, browser):
    page = browser.new_page(viewport=DESKTOP)
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url))
    page.goto(f"{server}/tasks/planted-features")
    page.wait_for_load_state("networkidle")
    assert seen and all(u.startswith(server) for u in seen), seen
    page.close()


@pytest.mark.parametrize("viewport,js", [(DESKTOP, True), (PHONE, False)], ids=["desktop", "phone-no-js"])
def test_task_plots_render(server, browser, viewport, js):
    ctx = browser.new_context(viewport=viewport, java_script_enabled=js, device_scale_factor=1)
    page = ctx.new_page()
    page.goto(f"{server}/tasks/planted-features")
    plot = page.get_by_role("img", name="Recall against superposition")
    plot.scroll_into_view_if_needed()
    assert plot.is_visible()
    box = plot.bounding_box()
    assert box["width"] > 250 and box["height"] > 200
    assert box["x"] + box["width"] <= viewport["width"] + 1       # scales down to the phone's width
    # 4 submissions x 30 instances, every one with a value on both axes
    assert page.locator("#plot-recall-vs-superposition g.series > circle, "
                        "#plot-recall-vs-superposition g.series > rect").count() == 120
    assert page.locator("#plot-recall-vs-density text.legend").count() == 4
    assert page.locator("#plot-recall-vs-density b").count() == 0   # the name with markup stays text
    name = "desktop" if js else "phone"
    page.locator("#figure-recall-vs-superposition").screenshot(path=str(ARTIFACTS / f"plot-{name}.png"))
    ctx.close()
