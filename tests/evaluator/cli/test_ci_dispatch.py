"""scripts/verify_dispatch.py: the checks a test-split dispatch passes before a self-hosted runner is
asked for (issue 17). The API answers are written in the shape GitHub's REST API gives them
(GET /repos/{r}/pulls/{n}, .../pulls/{n}/files, .../collaborators/{u}/permission)."""
import importlib.util

import pytest

from tests.builders import REPO

_spec = importlib.util.spec_from_file_location("verify_dispatch", REPO / "scripts" / "verify_dispatch.py")
vd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vd)

REPO_NAME = "phasebench/phasebench"
SHA = "0123456789abcdef0123456789abcdef01234567"


def pull(**over):
    p = {"number": 42, "state": "open", "changed_files": 2,
         "head": {"sha": SHA, "ref": "my-method", "repo": {"full_name": "someone/phasebench"}},
         "base": {"sha": "f" * 40, "ref": "main", "repo": {"full_name": REPO_NAME}}}
    p.update(over)
    return p


def files(*names, **extra):
    return [{"filename": n, "status": "added", **extra} for n in names]


OK_FILES = files("submissions/my-method/submission.yaml", "submissions/my-method/method.py")


def check(p=None, f=None, **kw):
    args = {"repo": REPO_NAME, "pr": 42, "sha": SHA, "submission": "my-method"} | kw
    return vd.check_pull(pull() if p is None else p, OK_FILES if f is None else f, **args)


def test_the_reviewed_head_changing_one_folder_passes():
    assert check() == []


def test_a_push_after_the_review_fails():
    problems = check(pull(head={"sha": "a" * 40}))
    assert len(problems) == 1 and "not the reviewed" in problems[0]


@pytest.mark.parametrize("paths, shown", [
    (["submissions/my-method/method.py", ".github/workflows/evil.yml"], ".github/workflows/evil.yml"),
    (["submissions/my-method/method.py", "Makefile"], "Makefile"),
    (["submissions/my-method/method.py", "evaluator/runner.py"], "evaluator/runner.py"),
    (["submissions/my-method/method.py", "submissions/pca/method.py"], "submissions/pca/method.py"),
    (["submissions/my-method/method.py", "submissions/my-method-2/x.py"], "submissions/my-method-2/x.py"),
    (["submissions/my-method/method.py", "submissions/my-method/../../Makefile"], "../../Makefile"),
    (["submissions/my-method/method.py", "submissions/my-method"], "'submissions/my-method'"),
])
def test_a_file_outside_the_folder_fails(paths, shown):
    problems = check(pull(changed_files=len(paths)), files(*paths))
    assert any("outside submissions/my-method/" in p and shown in p for p in problems), problems


def test_a_rename_out_of_the_folder_counts_by_its_old_name():
    moved = [{"filename": "submissions/my-method/x.py", "status": "renamed", "previous_filename": "conftest.py"}]
    problems = check(pull(changed_files=1), moved)
    assert any("'conftest.py'" in p for p in problems), problems


def test_a_list_cut_short_fails():
    # The files endpoint stops at 3000 entries: the unlisted rest could touch anything.
    problems = check(pull(changed_files=3500), OK_FILES)
    assert any("could not be checked" in p for p in problems), problems
    assert any("no file" in p for p in check(pull(changed_files=0), []))


@pytest.mark.parametrize("over", [{"base": {"ref": "release", "repo": {"full_name": REPO_NAME}}},
                                  {"base": {"ref": "main", "repo": {"full_name": "someone/phasebench"}}},
                                  {"number": 43}])
def test_a_pull_request_into_another_base_or_another_number_fails(over):
    assert check(pull(**over)) != []


@pytest.mark.parametrize("pr, sha, submission", [
    ("42; rm -rf /", SHA, "my-method"), ("0", SHA, "my-method"), ("42", SHA[:12], "my-method"),
    ("42", SHA.upper(), "my-method"), ("42", "HEAD", "my-method"), ("42", SHA, "../evaluator"),
    ("42", SHA, "my-method/../x"), ("42", SHA, "My-Method"), ("42", SHA, ""), ("42", SHA + "\n", "my-method"),
])
def test_inputs_are_checked_before_any_api_call(pr, sha, submission, capsys):
    assert vd.check_inputs(pr, sha, submission) != []
    rc = vd.main(["--repo", REPO_NAME, "--pr", pr, "--sha", sha, "--submission", submission, "--actor", "octocat"])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("::error::") and "gh api" not in err  # refused before gh was asked anything
    assert all(line.startswith("::error::") for line in err.splitlines())  # no line of its own for a newline


@pytest.mark.parametrize("role, ok", [("admin", True), ("maintain", True), ("write", False), ("triage", False),
                                      ("read", False), (None, False)])
def test_only_a_maintainer_may_dispatch(role, ok):
    assert (vd.check_actor({"permission": "write", "role_name": role}) == []) == ok


def test_a_file_name_cannot_start_a_workflow_command():
    evil = "submissions/x.py\n::warning::forged"
    problems = check(pull(changed_files=1), files(evil))
    assert problems and all("\n" not in p for p in problems)
