"""``phasebench ci changed-submissions`` against a real git repository with a base and a PR branch."""
import subprocess

import pytest
from click.testing import CliRunner

from evaluator.cli import main
from tests.builders import write_submission


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """main: two baselines; branch pr: adds one submission and edits one baseline's code."""
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.org")
    git(tmp_path, "config", "user.name", "t")
    write_submission(tmp_path / "submissions", name="base-a", baseline=True)
    write_submission(tmp_path / "submissions", name="base-b", baseline=True,
                     tasks={"scaling-exponents": "method:run"})
    (tmp_path / "README.md").write_text("repo\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "pr")
    write_submission(tmp_path / "submissions", name="new-method")
    (tmp_path / "submissions" / "base-b" / "method.py").write_text("def run(problem):\n    return 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "pr")
    return tmp_path


def changed(repo, *args):
    return CliRunner().invoke(main, ["ci", "changed-submissions", "--repo", str(repo), "--base", "main", *args])


def test_lists_the_changed_folders_and_writes_the_github_output(repo):
    out = changed(repo, "--head", "pr", "--with-baselines", "--github-output", repo / "gh-out")
    assert out.exit_code == 0, out.output
    assert out.output == "submissions/base-b submissions/new-method\n"
    # base-a answers planted-features like new-method; base-b is already in the list.
    assert (repo / "gh-out").read_text() == ("folders=submissions/base-b submissions/new-method\n"
                                             "baselines=submissions/base-a\n")


def test_only_submissions_refuses_a_pr_that_touches_anything_else(repo):
    (repo / "README.md").write_text("changed\n")
    git(repo, "commit", "-qam", "also the readme")
    out = changed(repo, "--head", "pr", "--only-submissions")
    assert out.exit_code == 1 and "changes files outside submissions/<name>/: README.md" in out.output


def test_checkout_takes_only_the_submission_folders_from_the_pr(repo):
    (repo / "README.md").write_text("changed in the pr\n")
    git(repo, "commit", "-qam", "readme in the pr")
    git(repo, "checkout", "-q", "main")
    out = changed(repo, "--head", "pr", "--checkout")
    assert out.exit_code == 0 and out.output == "submissions/base-b submissions/new-method\n", out.output
    assert (repo / "submissions" / "new-method" / "submission.yaml").is_file()
    assert "return 1" in (repo / "submissions" / "base-b" / "method.py").read_text()
    assert (repo / "README.md").read_text() == "repo\n"  # the trusted side is left alone


def test_a_pr_without_submission_changes_lists_nothing(repo):
    out = changed(repo, "--head", "main")
    assert out.exit_code == 0 and out.output == "\n"


def head_sha(repo, ref="pr"):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", ref], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_expect_takes_the_one_reviewed_folder_at_the_reviewed_commit(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.org")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "README.md").write_text("repo\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "pr")
    write_submission(tmp_path / "submissions", name="new-method")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "pr")
    sha = head_sha(tmp_path)
    git(tmp_path, "checkout", "-q", "main")
    out = changed(tmp_path, "--head", sha, "--only-submissions", "--expect", "new-method", "--checkout")
    assert out.exit_code == 0 and out.output == "submissions/new-method\n", out.output
    assert (tmp_path / "submissions" / "new-method" / "submission.yaml").is_file()


def test_expect_refuses_a_branch_name_and_a_second_folder(repo):
    # A ref names whatever was pushed last; only the SHA is what a maintainer reviewed.
    out = changed(repo, "--head", "pr", "--expect", "new-method")
    assert out.exit_code == 1 and "full 40-hex commit SHA" in out.output
    # The pr branch also edits base-b: a dispatch for new-method must not carry base-b along.
    sha = head_sha(repo)
    git(repo, "checkout", "-q", "main")
    out = changed(repo, "--head", sha, "--only-submissions", "--expect", "new-method", "--checkout")
    assert out.exit_code == 1, out.output
    assert "expected changes to submissions/new-method/ alone" in out.output and "submissions/base-b/" in out.output
    assert not (repo / "submissions" / "new-method").exists()  # nothing was checked out
