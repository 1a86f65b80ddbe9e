"""Trust properties of the GitHub workflows, read from the YAML (issue 17).

A workflow file that a pull request supplies is the workflow that runs for that pull request, so no
guard inside a `pull_request` workflow protects a self-hosted runner: such a runner may only be
reachable from `workflow_dispatch` on main, behind the protected environment. The rest keeps pull
request text out of shell and JavaScript source and keeps tokens minimal."""
import re

import pytest
import yaml

from tests.builders import REPO

WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# Events whose workflow file, refs or payload text a pull request or a branch push can choose.
UNTRUSTED_EVENTS = {"pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment",
                    "issue_comment", "issues", "discussion", "discussion_comment", "workflow_run", "fork",
                    "watch", "create", "delete", "merge_group", "check_run", "check_suite", "status"}
# The only write scopes a workflow may ask for, and where.
ALLOWED_WRITES = {("pr-comment.yml", "pull-requests")}
# ${{ }} text that someone outside the maintainers can choose (or that a maintainer types).
ATTACKER_TEXT = re.compile(r"\$\{\{[^}]*\b(github\.event|inputs|github\.head_ref|env|steps|needs|secrets)\b",
                           re.DOTALL)


def _load(path):
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def _events(doc) -> dict:
    on = doc["on"]
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {e: {} for e in on}
    return {e: (v or {}) for e, v in on.items()}


def _labels(runs_on) -> list[str]:
    if isinstance(runs_on, str):
        return [runs_on]
    if isinstance(runs_on, dict):  # {group: ..., labels: ...}
        labels = runs_on.get("labels", [])
        return ([labels] if isinstance(labels, str) else list(labels)) + ["self-hosted"] * ("group" in runs_on)
    return list(runs_on)


def _self_hosted(job) -> bool:
    labels = _labels(job.get("runs-on", []))
    # A runner group, a custom label or an expression all reach runners that are not GitHub's.
    return any(not re.fullmatch(r"(ubuntu|windows|macos)-[\w.-]+", label) for label in labels)


def _untrusted_triggers(doc) -> set[str]:
    found = set()
    for event, conf in _events(doc).items():
        if event in UNTRUSTED_EVENTS:
            found.add(event)
        elif event == "push":
            # A push to a branch other than main runs that branch's (unreviewed) workflow file.
            branches = conf.get("branches")
            if branches != ["main"] or conf.get("tags") or conf.get("branches-ignore"):
                found.add("push (not only main)")
    return found


def _steps(doc):
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


WORKFLOW_IDS = [p.name for p in FILES]


def test_the_workflows_are_there():
    assert set(WORKFLOW_IDS) >= {"ci.yml", "pr-submission.yml", "pr-comment.yml", "maintainer-test.yml"}


@pytest.mark.parametrize("path", FILES, ids=WORKFLOW_IDS)
def test_no_self_hosted_job_is_reachable_from_a_pull_request_or_a_branch(path):
    doc = _load(path)
    hosted = [j for j, job in doc["jobs"].items() if _self_hosted(job)]
    if hosted:
        assert not _untrusted_triggers(doc), f"{path.name}: {hosted} on a self-hosted runner, started by " \
                                             f"{sorted(_untrusted_triggers(doc))}"
        assert set(_events(doc)) == {"workflow_dispatch"}, f"{path.name}: {sorted(_events(doc))}"


def test_the_test_split_job_is_dispatched_on_main_behind_its_environment():
    doc = _load(WORKFLOWS / "maintainer-test.yml")
    hosted = {j: job for j, job in doc["jobs"].items() if _self_hosted(job)}
    assert list(hosted) == ["evaluate-test"]
    job = hosted["evaluate-test"]
    assert set(_events(doc)) == {"workflow_dispatch"}
    assert job["environment"] == "test-evaluation"
    # Not the guard (a dispatch from another branch runs that branch's copy of this file: the
    # environment's deployment-branch policy and the runner group stop it), but it makes such a
    # dispatch of this file fail before it asks for a runner.
    assert "github.ref == 'refs/heads/main'" in job["if"]
    # The runner comes from the group that only this workflow on main may use (docs/ci.md).
    assert job["runs-on"]["group"] == "phasebench-test-split"
    # The reviewed commit is checked on a GitHub-hosted runner before the self-hosted one is asked for.
    verify = doc["jobs"][job["needs"]]
    assert not _self_hosted(verify) and "environment" not in verify
    inputs = _events(doc)["workflow_dispatch"]["inputs"]
    assert {"pr", "sha", "submission"} <= set(inputs) and all(inputs[k]["required"] for k in ("pr", "sha",
                                                                                               "submission"))


def test_the_test_split_job_runs_main_and_only_the_reviewed_folder():
    doc = _load(WORKFLOWS / "maintainer-test.yml")
    job = doc["jobs"]["evaluate-test"]
    checkout = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert len(checkout) == 1 and checkout[0]["with"]["ref"] == "${{ github.sha }}"
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "pull/" not in runs, "the job must take the reviewed commit, not whatever the pull request holds now"
    take = next(s for s in job["steps"] if "changed-submissions" in s.get("run", ""))
    for flag in ("--only-submissions", "--checkout", '--expect "$SUBMISSION"', '--head "$SHA"'):
        assert flag in take["run"]
    # Secrets reach only the steps that use them, never the ones that handle the pull request's files.
    assert not any("secrets." in str(v) for v in job.get("env", {}).values())
    for step in job["steps"]:
        if "secrets." in str(step.get("env", {})):
            assert "changed-submissions" not in step.get("run", "") and "validate" not in step.get("run", "")


@pytest.mark.parametrize("path", FILES, ids=WORKFLOW_IDS)
def test_no_pull_request_text_is_pasted_into_a_script(path):
    doc = _load(path)
    for job_id, step in _steps(doc):
        scripts = [("run", step.get("run", ""))]
        if step.get("uses", "").startswith("actions/github-script"):
            scripts.append(("script", step["with"]["script"]))
        for key, text in scripts:
            hit = ATTACKER_TEXT.search(text)
            assert hit is None, f"{path.name} / {job_id} / {step.get('name', step.get('uses'))}: {key} pastes " \
                                f"{hit.group(0)!r}; pass it through env: instead"


@pytest.mark.parametrize("path", FILES, ids=WORKFLOW_IDS)
def test_permissions_are_set_and_minimal(path):
    doc = _load(path)
    assert isinstance(doc.get("permissions"), dict), f"{path.name}: no top-level permissions (the default may be write)"
    blocks = [("(workflow)", doc["permissions"])]
    blocks += [(j, job["permissions"]) for j, job in doc["jobs"].items() if "permissions" in job]
    for where, perms in blocks:
        assert isinstance(perms, dict), f"{path.name} / {where}: permissions {perms!r}"
        for scope, level in perms.items():
            assert level in ("read", "none") or (path.name, scope) in ALLOWED_WRITES, \
                f"{path.name} / {where}: {scope}: {level}"


@pytest.mark.parametrize("path", FILES, ids=WORKFLOW_IDS)
def test_pull_request_workflows_get_github_hosted_runners_and_no_secrets(path):
    doc = _load(path)
    events = set(_events(doc))
    assert "pull_request_target" not in events, f"{path.name}: pull_request_target runs with a write token"
    if events & UNTRUSTED_EVENTS or "push" in events:
        for job_id, job in doc["jobs"].items():
            assert not _self_hosted(job), f"{path.name} / {job_id}: runs-on {job['runs-on']}"
            assert "environment" not in job, f"{path.name} / {job_id}: an environment holds secrets"
    if events & {"pull_request", "push"}:
        secrets = re.findall(r"secrets\.\w+", path.read_text())
        assert not secrets, f"{path.name}: {secrets}"


@pytest.mark.parametrize("path", FILES, ids=WORKFLOW_IDS)
def test_checkouts_leave_no_token_behind(path):
    for job_id, step in _steps(_load(path)):
        if step.get("uses", "").startswith("actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{path.name} / {job_id}"


def test_the_comment_workflow_runs_no_code_from_the_pull_request():
    doc = _load(WORKFLOWS / "pr-comment.yml")
    assert set(_events(doc)) == {"workflow_run"}
    for job_id, step in _steps(doc):
        # The default branch's code only: a checkout of the run's commit would be the pull request's.
        if step.get("uses", "").startswith("actions/checkout"):
            assert "ref" not in step.get("with", {}), job_id
        if step.get("uses", "").startswith("actions/download-artifact"):
            # Outside the workspace, so that the artifact cannot replace the script that reads it.
            assert step["with"]["path"].startswith("${{ runner.temp }}")
    runs = "\n".join(s.get("run", "") for _, s in _steps(doc))
    # The artifact is read as data by the renderer, never executed, sourced or pasted.
    assert "scripts/pr_report.py render" in runs
    for bad in ("bash ", "source ", "sh ", "eval ", "$(cat", "chmod"):
        assert bad not in runs, bad
