"""``phasebench ci``: what the pull-request workflows need from git and from the results database,
as tested commands."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import click

from ..results.report import build_report
from ..store import ResultsStore, make_engine, upgrade
from ..store.session import database_url
from ..submission import SPEC_FILE, validate_submission
from ._params import db_option

__all__ = ["changed_submissions", "ci", "report_data"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise click.ClickException(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def changed_submissions(repo: Path, base: str, head: str) -> tuple[list[str], list[str]]:
    """(submission names touched between the merge base of ``base`` and ``head``, other paths)."""
    names: set[str] = set()
    others: list[str] = []
    for path in _git(repo, "diff", "--name-only", "--no-renames", f"{base}...{head}").splitlines():
        parts = path.split("/")
        if len(parts) >= 3 and parts[0] == "submissions":
            names.add(parts[1])
        elif path:
            others.append(path)
    return sorted(names), others


@click.group()
def ci() -> None:
    """Helpers for the pull-request workflows (.github/workflows/)."""


@ci.command("changed-submissions")
@click.option("--base", required=True, help="the branch the pull request goes into, e.g. origin/main")
@click.option("--head", default="HEAD", show_default=True, help="the pull request's commit")
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("."))
@click.option("--only-submissions", is_flag=True,
              help="fail if the pull request changes anything outside submissions/<name>/")
@click.option("--checkout", is_flag=True,
              help="check out only those folders from --head into the working tree (the rest stays at --base)")
@click.option("--expect", default=None, metavar="NAME",
              help="fail unless the one submission changed is NAME and --head is a full commit SHA "
                   "(the test-split job: only the folder a maintainer reviewed, at the commit reviewed)")
@click.option("--with-baselines", is_flag=True,
              help="also list the baselines that answer a task one of the changed submissions answers")
@click.option("--github-output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="append folders=... and baselines=... to this file ($GITHUB_OUTPUT)")
def changed_cmd(base, head, repo, only_submissions, checkout, expect, with_baselines, github_output) -> None:
    """List the submission folders a pull request adds or changes (removed ones are left out)."""
    if expect is not None and not _SHA.match(head):
        # A branch or pull/N/head names whatever was pushed last, not what was reviewed.
        raise click.ClickException(f"--expect needs --head as a full 40-hex commit SHA, not {head!r}")
    names, others = changed_submissions(repo, base, head)
    if only_submissions and others:
        raise click.ClickException("this pull request changes files outside submissions/<name>/: "
                                   + ", ".join(others[:10]) + (" ..." if len(others) > 10 else ""))
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise click.ClickException(f"not a valid submission folder name: {', '.join(bad)}")
    if expect is not None and names != [expect]:
        raise click.ClickException(f"expected changes to submissions/{expect}/ alone; this commit changes "
                                   + (", ".join(f"submissions/{n}/" for n in names) or "no submission"))
    if checkout:
        present = [n for n in names if _git(repo, "ls-tree", "--name-only", head, f"submissions/{n}/").strip()]
        if present:
            _git(repo, "checkout", head, "--", *[f"submissions/{n}" for n in present])
    folders = [f"submissions/{n}" for n in names if (repo / "submissions" / n / SPEC_FILE).is_file()
               or (repo / "submissions" / n).is_dir()]
    baselines: list[str] = []
    if with_baselines:
        tasks = set()
        for folder in folders:
            spec, _ = validate_submission(repo / folder)
            tasks |= set(spec.tasks) if spec else set()
        for spec_file in sorted((repo / "submissions").glob(f"*/{SPEC_FILE}")):
            folder = f"submissions/{spec_file.parent.name}"
            spec, problems = validate_submission(spec_file.parent)
            if folder not in folders and spec and not problems and (spec.baseline or spec.floor) and tasks & set(spec.tasks):
                baselines.append(folder)
    click.echo(" ".join(folders))
    if github_output:
        with github_output.open("a") as f:
            f.write(f"folders={' '.join(folders)}\nbaselines={' '.join(baselines)}\n")


def report_data(store: ResultsStore, names: list[str], split: str) -> dict:
    """The report of the newest evaluations (evaluator.results.report) as the JSON that
    scripts/pr_report.py renders (and escapes) as the pull-request comment and the job summary."""
    # The renderer shows the first few failures; the count says how many there were.
    return build_report(store, names, split).to_json(max_failures=50)


@ci.command("report-data")
@db_option
@click.option("--submission", "names", multiple=True, required=True,
              help="a submission name or folder (repeatable)")
@click.option("--split", type=click.Choice(["dev", "test"]), default="dev", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def report_data_cmd(db_url, names, split, out) -> None:
    """Write the report of the newest evaluations as JSON, for scripts/pr_report.py to render.

    Always exits 0 when the file is written: the evaluate step's status is the run's verdict."""
    engine = make_engine(database_url(db_url))
    upgrade(engine)
    # A folder is accepted too (as the workflows pass them); its last part is the name.
    data = report_data(ResultsStore(engine), [Path(n).name for n in names], split)
    out.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
