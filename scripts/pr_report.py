#!/usr/bin/env python3
"""Render an evaluation report (the JSON that ``phasebench ci report-data`` writes) as the Markdown of
the pull-request comment and of the job summary.

    python3 scripts/pr_report.py render --data report.json --out body.md \\
        [--pr-number-file pr-number --github-output "$GITHUB_OUTPUT"]

The JSON of a pull request's run comes out of a job that ran the pull request's code, so the comment
workflow (pr-comment.yml) treats every byte of it as hostile: the file is size-checked before it is
parsed, each field is type-checked, numbers are formatted here, and every piece of text is put in a
code span of one line. GitHub renders no HTML, image, link, autolink, mention or emoji inside a code
span, and an unclosed ``<!--`` or ``</details>`` there is plain text; backticks (which would close
the span) and pipes (which split a table cell even inside a code span, after which the rest of the
cell is Markdown again) are replaced by look-alikes, and control, format and separator characters
(newlines, bidirectional overrides, zero-width joiners) become spaces.

Standard library only: the comment job runs it from the default branch without installing the
project."""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import unicodedata
from pathlib import Path

COMMENT_MARKER = "<!-- phasebench-evaluation-report -->"
MAX_INPUT_BYTES = 1_000_000
MAX_ROWS = 40
MAX_FAILURES_SHOWN = 10
#: GitHub refuses a comment over 65,536 characters; the caps above keep a report well under this.
MAX_BODY_CHARS = 60_000
SPLITS = ("dev", "test")
EVALUATION_STATUSES = {"running", "complete", "partial", "interrupted", "failed", "not evaluated"}
INSTANCE_STATUSES = {"ok", "error", "timeout", "memory", "output", "invalid", "crash", "budget"}
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_PR_NUMBER = re.compile(r"[1-9][0-9]{0,9}\n?")


class ReportError(ValueError):
    """The report data is not what ``phasebench ci report-data`` writes."""


def code(text: object, limit: int = 64) -> str:
    """Untrusted text as one inline code span of at most ``limit`` characters (see the module doc)."""
    s = "".join(" " if unicodedata.category(ch) in _INVISIBLE else ch for ch in str(text))
    s = " ".join(s.split()).replace("`", "ʼ").replace("|", "¦")
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    # An empty span would print its two backticks; a space at either end would be trimmed unevenly.
    return f"`{s}`" if s else "—"


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _status(value: str, known: set[str]) -> str:
    return value if value in known else code(value, 20)


# --- reading the data -------------------------------------------------------------------------------

def _get(obj: dict, key: str, kinds: tuple[type, ...], where: str, optional: bool = False):
    if key not in obj:
        if optional:
            return None
        raise ReportError(f"{where}: no {key!r}")
    value = obj[key]
    if value is None and optional:
        return None
    # bool is an int to Python; a JSON true where a count belongs is as wrong as a string.
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise ReportError(f"{where}: {key!r} is {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ReportError(f"{where}: {key!r} is not finite")
    if isinstance(value, int) and not isinstance(value, bool) and not -(10**12) < value < 10**12:
        raise ReportError(f"{where}: {key!r} is out of range")
    return value


def load(path: Path) -> dict:
    """The report data, size-checked before parsing and type-checked after."""
    with path.open("rb") as f:
        raw = f.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise ReportError(f"{path.name} is larger than {MAX_INPUT_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReportError(f"{path.name} is not JSON: {exc}") from None
    return check(data)


def _no_constant(name: str):
    raise ReportError(f"{name} is not a number a report holds")


def check(data: object) -> dict:
    if not isinstance(data, dict):
        raise ReportError("the report is not an object")
    split = _get(data, "split", (str,), "report")
    if split not in SPLITS:
        raise ReportError(f"report: unknown split {split[:20]!r}")
    rows = _get(data, "rows", (list,), "report")
    failures = _get(data, "failures", (list,), "report")
    n_failures = _get(data, "n_failures", (int,), "report")
    out_rows = []
    for i, row in enumerate(rows[:MAX_ROWS]):
        where = f"row {i}"
        if not isinstance(row, dict):
            raise ReportError(f"{where} is not an object")
        out_rows.append({
            "submission": _get(row, "submission", (str,), where),
            "task": _get(row, "task", (str,), where, optional=True),
            "status": _get(row, "status", (str,), where),
            "metric": _get(row, "metric", (str,), where, optional=True),
            "higher_is_better": _get(row, "higher_is_better", (bool,), where, optional=True),
            "headline": _get(row, "headline", (int, float), where, optional=True),
            "ci_low": _get(row, "ci_low", (int, float), where, optional=True),
            "ci_high": _get(row, "ci_high", (int, float), where, optional=True),
            "rank": _get(row, "rank", (int,), where, optional=True),
            "ranked": _get(row, "ranked", (int,), where, optional=True),
            "n_failed": _get(row, "n_failed", (int,), where, optional=True),
            "n_instances": _get(row, "n_instances", (int,), where, optional=True),
            "runtime_s": _get(row, "runtime_s", (int, float), where, optional=True),
        })
    out_failures = []
    for i, fail in enumerate(failures[:MAX_FAILURES_SHOWN]):
        where = f"failure {i}"
        if not isinstance(fail, dict):
            raise ReportError(f"{where} is not an object")
        out_failures.append({k: _get(fail, k, (str,), where)
                             for k in ("submission", "task", "instance", "status", "error")})
    return {"split": split, "rows": out_rows, "rows_left_out": max(0, len(rows) - MAX_ROWS),
            "failures": out_failures, "n_failures": max(n_failures, len(failures))}


# --- rendering --------------------------------------------------------------------------------------

def render(data: dict) -> str:
    """The comment's Markdown; ``data`` as :func:`check` returns it."""
    split = data["split"]
    head = ("submission", "task", "status", "headline", "95% CI", "rank", "failed", "time")
    lines = [COMMENT_MARKER, f"### PhaseBench: {split} split", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in data["rows"]:
        arrow = {True: " ↑", False: " ↓", None: ""}[r["higher_is_better"]]
        headline = "—" if r["metric"] is None else f"{code(r['metric'])}{arrow} {_num(r['headline'])}"
        ci = "—" if r["ci_low"] is None and r["ci_high"] is None else f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
        rank = "—" if r["rank"] is None else f"{r['rank']} of {r['ranked'] if r['ranked'] is not None else '?'}"
        failed = "—" if r["n_instances"] is None else f"{r['n_failed'] or 0}/{r['n_instances']}"
        cells = (code(r["submission"]), "—" if r["task"] is None else code(r["task"]),
                 _status(r["status"], EVALUATION_STATUSES), headline, ci, rank, failed,
                 "—" if r["runtime_s"] is None else f"{_num(r['runtime_s'], 1)} s")
        lines.append("| " + " | ".join(cells) + " |")
    if data["rows_left_out"]:
        lines += ["", f"…and {data['rows_left_out']} more row(s)."]
    if data["n_failures"]:
        lines += ["", f"<details><summary>{data['n_failures']} failed instance(s)</summary>", "",
                  "| submission | task | instance | status | error |", "|---|---|---|---|---|"]
        for f in data["failures"]:
            lines.append("| " + " | ".join([code(f["submission"]), code(f["task"]), code(f["instance"], 100),
                                              _status(f["status"], INSTANCE_STATUSES),
                                              code(f["error"], 300)]) + " |")
        if data["n_failures"] > len(data["failures"]):
            lines.append(f"\n…and {data['n_failures'] - len(data['failures'])} more.")
        lines += ["", "</details>"]
    if split == "dev":
        lines += ["", ("Rank is among the results stored for the dev split in this run's database (the "
                       "baselines and this pull request). The official score comes from the hidden test split, "
                       "run by a maintainer.")]
    else:
        lines += ["", "Rank is among the results stored for the test split."]
    body = "\n".join(lines) + "\n"
    if len(body) > MAX_BODY_CHARS:  # the caps make this unreachable; kept so that a new field cannot break it
        raise ReportError(f"the rendered report has {len(body)} characters")
    return body


def read_pr_number(path: Path) -> int:
    with path.open("rb") as f:
        raw = f.read(32)
    text = raw.decode("ascii", errors="replace")
    if not _PR_NUMBER.fullmatch(text):
        raise ReportError(f"{path.name}: not a pull request number")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="report JSON -> escaped Markdown")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--pr-number-file", type=Path, help="check this file holds a pull request number")
    r.add_argument("--github-output", type=Path, help="append pr-number=N to this file ($GITHUB_OUTPUT)")
    args = parser.parse_args(argv)
    try:
        body = render(load(args.data))
        number = read_pr_number(args.pr_number_file) if args.pr_number_file else None
    except (OSError, ReportError) as exc:
        print(f"pr_report: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(body, encoding="utf-8")
    if number is not None and args.github_output:
        with args.github_output.open("a") as f:
            f.write(f"pr-number={number}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
