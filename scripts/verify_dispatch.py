#!/usr/bin/env python3
"""Check a dispatch of the test-split evaluation (maintainer-test.yml) against GitHub before a
self-hosted runner is asked for:

    python3 scripts/verify_dispatch.py --repo "$GITHUB_REPOSITORY" --pr "$PR" --sha "$SHA" \\
        --submission "$SUBMISSION" --actor "$GITHUB_TRIGGERING_ACTOR" --github-output "$GITHUB_OUTPUT"

It passes only when the dispatcher maintains the repository, the pull request goes into main of
this repository, its head is exactly the commit given (the one a maintainer reviewed: a push after
the review changes the head and fails this), and every file it changes lies under
``submissions/<submission>/``. The data comes from the REST API through ``gh api`` (GH_TOKEN: the
job's read-only token); the decisions are the pure functions below, tested in
tests/evaluator/cli/test_ci_dispatch.py. Standard library only, so the check needs no install.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

SHA = re.compile(r"[0-9a-f]{40}")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # evaluator/cli/ci.py's folder names
PR = re.compile(r"[1-9][0-9]{0,9}")
MAINTAINER_ROLES = {"admin", "maintain"}
#: The pull-request files endpoint lists at most this many; a longer list cannot be checked whole.
MAX_FILES = 3000


def check_inputs(pr: str, sha: str, submission: str) -> list[str]:
    problems = []
    if not PR.fullmatch(pr):
        problems.append(f"pr {pr[:20]!r} is not a pull request number")
    if not SHA.fullmatch(sha):
        problems.append(f"sha {sha[:50]!r} is not a full 40-hex commit SHA (lower case)")
    if not NAME.fullmatch(submission):
        problems.append(f"submission {submission[:70]!r} is not a submission folder name")
    return problems


def check_actor(permission: dict) -> list[str]:
    """``GET /repos/{repo}/collaborators/{actor}/permission``: a maintainer or an admin."""
    role = permission.get("role_name")
    if role not in MAINTAINER_ROLES:
        return [f"the dispatcher's role is {role!r}; the test split is run by a maintainer or an admin"]
    return []


def check_pull(pull: dict, files: list[dict], *, repo: str, pr: int, sha: str, submission: str,
               base: str = "main") -> list[str]:
    """``GET /repos/{repo}/pulls/{pr}`` and ``.../files``: the reviewed head, into main, one folder."""
    problems = []
    if pull.get("number") != pr:
        problems.append(f"the API answered for pull request {pull.get('number')!r}, not {pr}")
    head = (pull.get("head") or {}).get("sha")
    if head != sha:
        problems.append(f"the pull request's head is {head}, not the reviewed {sha}: review the new commit "
                        "and dispatch with its SHA")
    base_ref = (pull.get("base") or {}).get("ref")
    base_repo = ((pull.get("base") or {}).get("repo") or {}).get("full_name")
    if base_ref != base or base_repo != repo:
        problems.append(f"the pull request goes into {base_repo}:{base_ref}, not {repo}:{base}")
    n = pull.get("changed_files")
    if not isinstance(n, int) or n != len(files) or n > MAX_FILES:
        problems.append(f"the pull request changes {n!r} files and {len(files)} were listed: "
                        "the whole list could not be checked")
    if not files:
        problems.append("the pull request changes no file")
    prefix = f"submissions/{submission}/"
    paths = [f.get("filename") for f in files] + [f["previous_filename"] for f in files
                                                  if f.get("previous_filename") is not None]
    outside = sorted({repr(p) for p in paths if not _inside(p, prefix)})
    if outside:
        shown = ", ".join(outside[:10]) + (" ..." if len(outside) > 10 else "")
        problems.append(f"the pull request changes files outside {prefix}: {shown}")
    return problems


def _inside(path: object, prefix: str) -> bool:
    # A rename out of the folder counts by its old name too, hence previous_filename above.
    return (isinstance(path, str) and path.startswith(prefix) and len(path) > len(prefix)
            and ".." not in path.split("/"))


def _gh(*args: str) -> str:
    out = subprocess.run(["gh", "api", *args], capture_output=True, text=True, check=False, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"gh api {' '.join(args)}: {out.stderr.strip()[:500]}")
    return out.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="owner/name ($GITHUB_REPOSITORY)")
    parser.add_argument("--pr", required=True)
    parser.add_argument("--sha", required=True)
    parser.add_argument("--submission", required=True)
    parser.add_argument("--actor", required=True, help="who dispatched ($GITHUB_TRIGGERING_ACTOR)")
    parser.add_argument("--base", default="main")
    parser.add_argument("--github-output", type=Path, help="append submission=... and sha=... ($GITHUB_OUTPUT)")
    args = parser.parse_args(argv)
    problems = check_inputs(args.pr, args.sha, args.submission)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", args.repo):
        problems.append(f"repo {args.repo!r} is not owner/name")
    if not re.fullmatch(r"[A-Za-z0-9-]+(\[bot\])?", args.actor):
        problems.append(f"actor {args.actor!r} is not a GitHub login")
    if not problems:  # the inputs go into API paths only once they are known to be plain
        try:
            problems += check_actor(json.loads(_gh(f"repos/{args.repo}/collaborators/{args.actor}/permission")))
            pull = json.loads(_gh(f"repos/{args.repo}/pulls/{args.pr}"))
            listing = _gh("--paginate", f"repos/{args.repo}/pulls/{args.pr}/files?per_page=100", "--jq", ".[]")
            files = [json.loads(line) for line in listing.splitlines() if line.strip()]
        except (RuntimeError, OSError, json.JSONDecodeError, subprocess.TimeoutExpired) as exc:
            problems.append(str(exc))
        else:
            problems += check_pull(pull, files, repo=args.repo, pr=int(args.pr), sha=args.sha,
                                   submission=args.submission, base=args.base)
    if problems:
        for p in problems:
            # One line each: a file name with a newline must not start a workflow command of its own.
            print("::error::" + "".join(c if c.isprintable() else "?" for c in p), file=sys.stderr)
        return 1
    print(f"pull request #{args.pr} at {args.sha} changes only submissions/{args.submission}/")
    if args.github_output:
        with args.github_output.open("a") as f:
            f.write(f"submission={args.submission}\nsha={args.sha}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
