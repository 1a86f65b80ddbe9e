"""``phasebench ci``: what the pull-request workflows need from git, as tested commands."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click

from ..submission import SPEC_FILE, validate_submission

__all__ = ["ci", "changed_submissions"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
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
@click.option("--with-baselines", is_flag=True,
              help="also list the baselines that answer a task one of the changed submissions answers")
@click.option("--github-output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="append folders=... and baselines=... to this file ($GITHUB_OUTPUT)")
def changed_cmd(base, head, repo, only_submissions, checkout, with_baselines, github_output) -> None:
    """List the submission folders a pull request adds or changes (removed ones are left out)."""
    names, others = changed_submissions(repo, base, head)
    if only_submissions and others:
        raise click.ClickException("this pull request changes files outside submissions/<name>/: "
                                   + ", ".join(others[:10]) + (" ..." if len(others) > 10 else ""))
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise click.ClickException(f"not a valid submission folder name: {', '.join(bad)}")
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
            if folder not in folders and spec and not problems and spec.baseline and tasks & set(spec.tasks):
                baselines.append(folder)
    click.echo(" ".join(folders))
    if github_output:
        with github_output.open("a") as f:
            f.write(f"folders={' '.join(folders)}\nbaselines={' '.join(baselines)}\n")
