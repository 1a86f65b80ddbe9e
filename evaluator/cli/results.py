"""``phasebench results``: export, import and publish the results dataset; report evaluations as
Markdown (the pull-request comment) or text."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from benchmark.dataset import BOARD_SPLITS
from benchmark.task import all_tasks

from ..hub import plan_results_push, push_results
from ..results.report import build_report
from ..store import ResultsStore, make_engine, redact, upgrade
from ..store.session import database_url
from ._params import db_option
from .results_card import card

__all__ = ["results", "COMMENT_MARKER", "render_report"]

#: First line of the pull-request comment, so that a rerun edits its comment instead of adding one.
COMMENT_MARKER = "<!-- phasebench-evaluation-report -->"
_MAX_FAILURES_SHOWN = 10

@click.group()
def results() -> None:
    """Export, import, publish and report the stored results."""


@results.command("export")
@db_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder to write the results dataset to (card and data/evaluations.jsonl)")
@click.option("--with-hidden-instances", is_flag=True,
              help="also write the test split's per-instance rows (they hold its answers): a private backup, "
                   "never to be published")
def export_cmd(db_url, out_dir, with_hidden_instances) -> None:
    """Write every evaluation, with provenance and per-instance rows (none of the hidden test split's
    unless --with-hidden-instances), as a results dataset."""
    from ..results.dataset import export_results   # here: it imports the boards, and they scipy.stats

    url = database_url(db_url)
    engine = make_engine(url)
    upgrade(engine)
    summary = export_results(engine, out_dir, with_hidden_instances)
    click.echo(f"{redact(url)} -> {out_dir}: {summary.n_evaluations} evaluation(s), "
               f"{summary.n_instances} instance row(s)"
               + (f", {summary.n_withheld} of the hidden test split withheld" if summary.n_withheld else ""))
    for key, n in summary.by_task_split.items():
        click.echo(f"  {key}: {n}")


@results.command("import")
@db_option
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def import_cmd(db_url, folder) -> None:
    """Rebuild an empty results database from an exported results dataset alone (and store the
    registered tasks' board snapshots, as the evaluator does after each evaluation)."""
    # Here, not at the top: both import scipy.stats, which `phasebench --help` need not wait for.
    from ..results.dataset import ResultsDatasetError, import_results
    from ..runner import refresh_snapshot

    url = database_url(db_url)
    engine = make_engine(url)
    upgrade(engine)
    try:
        n = import_results(engine, folder)
    except ResultsDatasetError as exc:
        raise click.ClickException(str(exc)) from None
    store = ResultsStore(engine)
    for task in all_tasks():
        for split in BOARD_SPLITS:
            refresh_snapshot(store, task, split)
    click.echo(f"{folder} -> {redact(url)}: {n} evaluation(s) imported")


@results.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-id", required=True, help="results dataset repository, e.g. phasebench/phasebench-results")
@click.option("--dry-run", is_flag=True, help="print the commit operations, upload nothing")
def push_cmd(folder, repo_id, dry_run) -> None:
    """Publish an exported results dataset to the Hub (token from $HF_TOKEN)."""
    plan = plan_results_push(folder)
    click.echo(f"{repo_id}: {len(plan.operations)} file(s)")
    for op in plan.operations:
        click.echo(f"  add {op.path_in_repo}")
    if not dry_run:
        click.echo(push_results(plan, repo_id))


def _cell(text: object) -> str:
    """Markdown table cell: one line, no pipe that would split the cell, bounded length."""
    s = " ".join(str(text).split()).replace("|", "\\|")
    return s if len(s) <= 160 else s[:157] + "..."


def _code_cell(text: object) -> str:
    """A cell for text a method wrote (its error message): one code span, so that GitHub renders no
    image, link, mention or HTML from it (an unclosed ``<!--`` would hide the rest of the report);
    backticks inside become quotes, pipes stay escaped (GFM splits cells on them even in code)."""
    return "`" + _cell(str(text).replace("`", "'")) + "`"


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def render_report(store: ResultsStore, names: list[str], split: str, markdown: bool) -> tuple[str, bool]:
    """The report of the newest evaluations (evaluator.results.report) as Markdown or text.
    Returns (text, every submission has finished evaluations)."""
    report = build_report(store, names, split)
    lines: list[str] = []
    table: list[tuple[str, ...]] = []
    for r in report.rows:
        if r.task is None:
            table.append((r.submission, "—", r.status, "—", "—", "—", "—", "—"))
            continue
        direction = "" if r.higher_is_better is None else ("↑" if r.higher_is_better else "↓")
        rank = "—" if r.rank is None else f"{r.rank} of {r.ranked}"
        table.append((r.submission, r.task, r.status, f"{r.metric} {direction} {_num(r.headline)}",
                      f"[{_num(r.ci_low)}, {_num(r.ci_high)}]", rank, f"{r.n_failed}/{r.n_instances}",
                      f"{_num(r.runtime_s, 1)} s"))
    failures = [(f.submission, f.task, f.instance, f.status, f.error) for f in report.failures]
    ok = report.all_finished
    head = ("submission", "task", "status", "headline", "95% CI", "rank", "failed", "time")
    if markdown:
        lines += [COMMENT_MARKER, f"### PhaseBench: {split} split", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in table]
        if failures:
            lines += ["", f"<details><summary>{len(failures)} failed instance(s)</summary>", "",
                      "| submission | task | instance | status | error |", "|---|---|---|---|---|"]
            lines += ["| " + " | ".join([*(_cell(c) for c in f[:-1]), _code_cell(f[-1])]) + " |"
                      for f in failures[:_MAX_FAILURES_SHOWN]]
            if len(failures) > _MAX_FAILURES_SHOWN:
                lines.append(f"\n…and {len(failures) - _MAX_FAILURES_SHOWN} more.")
            lines += ["", "</details>"]
        lines += ["", f"Rank is among the results stored for the {split} split in this run's database "
                      "(the baselines and this pull request). The official score comes from the hidden test "
                      "split, run by a maintainer."]
    else:
        widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *table]]
        lines += [f"{n} / {t} / {i}: {s}: {e}" for n, t, i, s, e in failures[:_MAX_FAILURES_SHOWN]]
    return "\n".join(lines) + "\n", ok


@results.command("report")
@db_option
@click.option("--submission", "names", multiple=True, required=True,
              help="a submission name or folder (repeatable)")
@click.option("--split", type=click.Choice(["dev", "test"]), default="dev", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["markdown", "text"]), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the report to this file instead of standard output")
def report_cmd(db_url, names, split, fmt, out) -> None:
    """Summarise the newest evaluations of submissions (the pull-request comment is --format markdown).

    Exits 1 when a submission has no finished evaluation on the split."""
    engine = make_engine(database_url(db_url))
    upgrade(engine)
    # A folder is accepted too (as the workflow passes them); its last part is the name.
    text, ok = render_report(ResultsStore(engine), [Path(n).name for n in names], split, fmt == "markdown")
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    sys.exit(0 if ok else 1)


# Here, not in the package: the command group is imported only when `phasebench results` runs.
results.add_command(card)
