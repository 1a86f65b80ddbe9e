"""The pull-request comment: ``phasebench ci report-data`` -> scripts/pr_report.py -> Markdown, with
hostile text in every field a submission or its method controls (issue 17).

The comment workflow renders a JSON artifact made by a job that ran the pull request's code, so the
renderer is also fed JSON written by hand, as an attacker would write it. The Markdown is rendered
to HTML (CommonMark with GFM tables and raw HTML on, as GitHub allows some HTML) and read back: the
hostile text must reach the page only as text inside <code>, where GitHub makes no link, image,
mention or HTML of it, and no row may gain or lose a cell."""
import importlib.util
import json
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from evaluator.cli import main
from evaluator.store import make_engine, upgrade
from tests.builders import REPO
from tests.leaderboard.conftest import make_evaluation

_spec = importlib.util.spec_from_file_location("pr_report", REPO / "scripts" / "pr_report.py")
pr_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pr_report)

HOSTILE = [
    "<img src=https://evil.example/p.png onerror=alert(1)>",
    "[click me](https://evil.example/phish)",
    "![pixel](https://evil.example/track.png)",
    "<!-- the rest of the report is hidden",
    "</details><script>alert(1)</script>",
    "``double`` and `single` backticks",
    "a | b || c \\| d",
    "line one\n## a heading\n| forged | row |",
    "@maintainer please merge, cc @org/team",
    "https://evil.example/bare-link www.evil.example",
    "right-to-left \u202egnp.exe zero\u200bwidth nul\x00 bell\x07",
    "<a href='javascript:alert(1)'>x</a> &lt;entity&gt;",
    "\\",
    "trailing backslash \\",
]
# What each hostile string must not become outside <code>.
MARKERS = ["evil.example", "alert(", "@maintainer", "@org", "heading", "forged", "gnp.exe", "javascript:"]
ALLOWED_TAGS = {"h3", "p", "table", "thead", "tbody", "tr", "th", "td", "code", "details", "summary"}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.comments, self.outside, self.inside = set(), [], [], []
        self.rows, self._depth = [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "code":
            self._depth += 1
        elif tag == "tr":
            self.rows.append(0)
        elif tag in ("td", "th"):
            self.rows[-1] += 1

    def handle_endtag(self, tag):
        if tag == "code":
            self._depth -= 1

    def handle_comment(self, data):
        self.comments.append(data)

    def handle_data(self, data):
        (self.inside if self._depth else self.outside).append(data)


def page(markdown: str) -> _Page:
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    p = _Page()
    p.feed(html)
    return p


def assert_only_code(markdown: str, table_widths=(8, 5)):
    p = page(markdown)
    assert p.tags <= ALLOWED_TAGS, p.tags - ALLOWED_TAGS
    assert p.comments == [" phasebench-evaluation-report "], p.comments  # the marker, nothing else hides
    outside = "".join(p.outside)
    for marker in MARKERS:
        assert marker not in outside, (marker, outside)
    assert "@" not in outside and "`" not in outside, outside
    widths = set(p.rows)
    assert widths <= set(table_widths), p.rows
    return p


def hostile_json(text: str, n_rows: int = 3) -> dict:
    row = {"submission": text, "task": text, "status": text, "metric": text, "higher_is_better": True,
           "headline": 0.5, "ci_low": 0.4, "ci_high": 0.6, "rank": 1, "ranked": 2, "n_failed": 1,
           "n_instances": 4, "runtime_s": 1.5}
    fail = {"submission": text, "task": text, "instance": text, "status": text, "error": text}
    return {"split": "dev", "rows": [row] * n_rows, "failures": [fail] * 3, "n_failures": 3}


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_every_field_of_the_artifact_stays_code(text):
    body = pr_report.render(pr_report.check(hostile_json(text)))
    p = assert_only_code(body)
    assert p.rows == [8, 8, 8, 8, 5, 5, 5, 5]  # header + 3 rows, header + 3 failures: no cell gained or lost
    shown = "".join(p.inside)
    # Shown, not dropped: the first visible word of the string is in the code spans.
    assert text.split()[0].replace("`", "ʼ").replace("|", "¦")[:10] in shown


def test_all_hostile_strings_at_once_and_at_full_length():
    text = " ".join(HOSTILE) * 40
    data = hostile_json(text, n_rows=500)
    data["failures"] = data["failures"] * 100
    data["n_failures"] = 300
    body = pr_report.render(pr_report.check(data))
    assert_only_code(body)
    assert len(body) < pr_report.MAX_BODY_CHARS and "…and 460 more row(s)." in body and "…and 290 more." in body


def test_the_store_to_comment_path_escapes_what_a_submission_controls(tmp_path):
    """End to end through the real command: hostile submission, metric and instance names, a
    method's error and an evaluation note, stored in SQLite and rendered for the comment."""
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    make_evaluation(engine, name="pca", headline=0.61, baseline=True)
    names = []
    for i, text in enumerate(HOSTILE[:6]):
        name = f"m{i}{text}".replace("/", "_")  # the command takes a folder's last part as the name
        names.append(name)
        # The first on a real task (ranked against pca), the others on tasks named by the attacker.
        make_evaluation(engine, name=name, task="planted-features" if i == 0 else f"t{i}{text}",
                        headline=0.7 - i / 100, note=text,
                        instances=[{"instance_id": text, "group": "T0", "status": "error", "metrics": {},
                                    "runtime_s": 0.1, "error": text}])
    out = CliRunner().invoke(main, ["ci", "report-data", "--db", url, "--out", str(tmp_path / "r.json"),
                                    *[a for n in names for a in ("--submission", n)]])
    assert out.exit_code == 0, out.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert [r["submission"] for r in data["rows"]] == names and data["n_failures"] == 12
    assert data["rows"][0]["rank"] == 1 and data["rows"][0]["ranked"] == 2  # above pca
    assert data["rows"][1]["task"] == "t1" + HOSTILE[1] and data["rows"][1]["rank"] is None
    assert pr_report.main(["render", "--data", str(tmp_path / "r.json"), "--out", str(tmp_path / "b.md")]) == 0
    body = (tmp_path / "b.md").read_text()
    assert_only_code(body)
    assert "| `m0<img src=https:__evil.example_p.png onerror=alert(1)>` | `planted-features` | complete | " \
           "`recall@0.9` ↑ 0.700 | [0.600, 0.800] | 1 of 2 | 1/1 |" in body


def test_a_missing_evaluation_and_a_nan_headline_are_dashes(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    make_evaluation(engine, name="nan-method", headline=float("nan"))
    out = CliRunner().invoke(main, ["ci", "report-data", "--db", url, "--out", str(tmp_path / "r.json"),
                                    "--submission", "submissions/nan-method", "--submission", "nobody"])
    assert out.exit_code == 0, out.output
    body = pr_report.render(pr_report.load(tmp_path / "r.json"))
    assert "| `nan-method` | `planted-features` | complete | `recall@0.9` ↑ — |" in body
    assert "| `nobody` | — | not evaluated | — | — | — | — | — |" in body


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(split="<img>"), "unknown split"),
    (lambda d: d["rows"][0].update(headline="0.9"), "'headline' is str"),
    (lambda d: d["rows"][0].update(rank=True), "'rank' is bool"),
    (lambda d: d["rows"][0].update(n_instances=10**15), "out of range"),
    (lambda d: d["rows"][0].update(submission=["list"]), "'submission' is list"),
    (lambda d: d["rows"][0].pop("status"), "no 'status'"),
    (lambda d: d["failures"].append("text"), "failure 3 is not an object"),
    (lambda d: d.update(rows={"a": 1}), "'rows' is dict"),
])
def test_malformed_data_is_refused(mutate, message):
    data = hostile_json("x")
    data["rows"] = [dict(r) for r in data["rows"]]
    mutate(data)
    with pytest.raises(pr_report.ReportError, match=message):
        pr_report.check(data)


@pytest.mark.parametrize("raw, message", [
    (b'{"split": "dev", "rows": [], "failures": [], "n_failures": NaN}', "NaN is not a number"),
    (b'{"split": "dev", "rows": [{"headline": Infinity}]}', "Infinity is not a number"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b" " * (1_000_001), "larger than"),
])
def test_the_file_is_checked_before_and_while_it_is_parsed(tmp_path, raw, message):
    (tmp_path / "r.json").write_bytes(raw)
    with pytest.raises(pr_report.ReportError, match=message):
        pr_report.load(tmp_path / "r.json")
    assert pr_report.main(["render", "--data", str(tmp_path / "r.json"), "--out", str(tmp_path / "b.md")]) == 1
    assert not (tmp_path / "b.md").exists()


@pytest.mark.parametrize("raw, ok", [(b"42\n", True), (b"7", True), (b"0", False), (b"-1", False), (b"12 ", False),
                                     (b"1\n::set-output name=x::y", False), (b"99999999999", False), (b"", False)])
def test_the_pull_request_number_is_one_plain_number(tmp_path, raw, ok):
    (tmp_path / "pr-number").write_bytes(raw)
    (tmp_path / "r.json").write_text(json.dumps(hostile_json("x")))
    rc = pr_report.main(["render", "--data", str(tmp_path / "r.json"), "--out", str(tmp_path / "b.md"),
                         "--pr-number-file", str(tmp_path / "pr-number"), "--github-output", str(tmp_path / "o")])
    assert rc == (0 if ok else 1)
    if ok:
        assert (tmp_path / "o").read_text() == f"pr-number={int(raw)}\n"
    else:
        assert not (tmp_path / "o").exists()
