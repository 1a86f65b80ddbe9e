"""The GitHub workflows as data: every `phasebench` command they call exists with the options they
pass, and the secrets stay where a fork's code cannot reach them."""
import re
import shlex

import click
import pytest
import yaml

from evaluator.cli import main
from tests.builders import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def _load(name):
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def _steps(doc):
    for job in doc["jobs"].values():
        yield from job.get("steps", [])


def _invocations(run: str):
    """Each `phasebench ...` command line of a run script, as tokens after the program name."""
    script = re.sub(r"\\\n\s*", " ", run)
    for line in script.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            tokens = shlex.split(part, comments=True)
            for i, tok in enumerate(tokens):
                if tok.endswith("phasebench") and not tok.startswith("-"):
                    yield tokens[i + 1:]
                    break


def _resolve(tokens):
    """The click command the tokens name, its path (e.g. "results report") and the options passed."""
    cmd, ctx, rest, path = main, click.Context(main), list(tokens), []
    while isinstance(cmd, click.Group):
        assert rest, f"phasebench {' '.join(tokens)}: names a group, not a command"
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"phasebench {' '.join(tokens)}: no command {rest[0]!r}"
        cmd, path, rest = sub, path + [rest[0]], rest[1:]
    return cmd, " ".join(path), [t.split("=")[0] for t in rest if t.startswith("--")]


ALL_RUNS = [(wf.name, step.get("name", "?"), step["run"]) for wf in sorted(WORKFLOWS.glob("*.yml"))
            for step in _steps(_load(wf.name)) if "run" in step]


def test_the_workflows_call_the_project_cli():
    called = {(wf, _resolve(t)[1]) for wf, _, run in ALL_RUNS for t in _invocations(run)}
    assert {("pr-submission.yml", "ci changed-submissions"), ("pr-submission.yml", "validate"),
            ("pr-submission.yml", "evaluate"), ("pr-submission.yml", "ci report-data"),
            ("maintainer-test.yml", "ci changed-submissions"), ("maintainer-test.yml", "validate"),
            ("maintainer-test.yml", "data pull"), ("maintainer-test.yml", "evaluate"),
            ("maintainer-test.yml", "ci report-data"),
            ("maintainer-test.yml", "results export"), ("maintainer-test.yml", "results push")} <= called


@pytest.mark.parametrize("workflow, step, run", ALL_RUNS, ids=[f"{w}:{s}" for w, s, _ in ALL_RUNS])
def test_every_phasebench_command_and_option_exists(workflow, step, run):
    for tokens in _invocations(run):
        cmd, path, options = _resolve(tokens)
        known = {opt for p in cmd.params for opt in p.opts + p.secondary_opts}
        unknown = [o for o in options if o not in known]
        assert not unknown, f"{workflow} / {step}: phasebench {path} has no option {unknown}"


def test_the_pull_request_job_has_no_secrets_and_a_read_only_token():
    text = (WORKFLOWS / "pr-submission.yml").read_text()
    doc = _load("pr-submission.yml")
    assert "secrets." not in text
    assert doc["permissions"] == {"contents": "read"}
    assert list(doc["on"]) == ["pull_request"] and doc["on"]["pull_request"]["paths"] == ["submissions/**"]


def test_the_comment_job_never_runs_the_pull_requests_code():
    # More of the trust properties (issue 17) are in tests/evaluator/cli/test_ci_workflows.py.
    doc = _load("pr-comment.yml")
    assert list(doc["on"]) == ["workflow_run"]
    checkouts = [s for s in _steps(doc) if s.get("uses", "").startswith("actions/checkout")]
    assert all("ref" not in s.get("with", {}) for s in checkouts)  # the default branch, not the run's commit
    runs = [s["run"] for s in _steps(doc) if "run" in s]
    assert runs and all(r.startswith("python3 scripts/pr_report.py render") for r in runs)
    assert doc["permissions"] == {"contents": "read"}
    [job] = doc["jobs"].values()
    assert job["permissions"] == {"actions": "read", "contents": "read", "pull-requests": "write"}


def test_the_test_split_job_evaluates_in_the_gpu_container():
    # Who may start it and what it takes from the pull request: tests/evaluator/cli/test_ci_workflows.py.
    doc = _load("maintainer-test.yml")
    assert list(doc["on"]) == ["workflow_dispatch"]
    job = doc["jobs"]["evaluate-test"]
    assert job["environment"] == "test-evaluation"
    evaluate = next(s for s in job["steps"] if " evaluate " in s.get("run", ""))
    for flag in ("--split test", "--device cuda", "--sandbox docker", '"submissions/$SUBMISSION"'):
        assert flag in evaluate["run"]
