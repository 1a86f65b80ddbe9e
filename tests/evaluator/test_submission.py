from pathlib import Path

import pytest

from evaluator.submission import SubmissionError, code_sha256, load_submission, validate_submission
from tests.builders import REPO, write_submission

BASELINES = sorted(p for p in (REPO / "submissions").iterdir() if (p / "submission.yaml").exists())


@pytest.mark.parametrize("folder", BASELINES, ids=lambda p: p.name)
def test_every_shipped_submission_validates(folder):
    spec, problems = validate_submission(folder)
    assert problems == []
    assert spec.baseline or spec.floor   # every shipped submission is a maintained reference


def test_valid_submission_loads_with_a_code_hash(tmp_path):
    sub = load_submission(write_submission(tmp_path))
    assert sub.name == "tiny-method" and len(sub.code_sha256) == 64


def test_code_hash_follows_the_code_not_caches(tmp_path):
    folder = write_submission(tmp_path)
    before = code_sha256(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "method.cpython-311.pyc").write_bytes(b"junk")
    assert code_sha256(folder) == before
    (folder / "method.py").write_text((folder / "method.py").read_text() + "\n# changed\n")
    assert code_sha256(folder) != before


def _problems(folder: Path) -> list[str]:
    return validate_submission(folder)[1]


def test_malformed_yaml_names_the_line(tmp_path):
    folder = write_submission(tmp_path)
    (folder / "submission.yaml").write_text("name: x\nauthors: [a\n")
    [problem] = _problems(folder)
    assert "submission.yaml:" in problem and "malformed YAML" in problem


def test_missing_spec_file(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "submission.yaml: not found" in _problems(tmp_path / "empty")[0]


def test_unknown_and_missing_fields_are_named(tmp_path):
    folder = write_submission(tmp_path, licence="MIT")
    text = (folder / "submission.yaml").read_text().replace("license: MIT\n", "")
    (folder / "submission.yaml").write_text(text)
    problems = _problems(folder)
    assert any("licence: unknown field" in p for p in problems)
    assert any(p.endswith("license: Field required") for p in problems)


def test_unknown_task_suggests_the_right_one(tmp_path):
    folder = write_submission(tmp_path, tasks={"planted-feature": "method:run"})
    [problem] = _problems(folder)
    assert "tasks.planted-feature" in problem and "did you mean 'planted-features'" in problem


def test_name_must_match_the_folder(tmp_path):
    folder = write_submission(tmp_path, name="a-method")
    folder.rename(tmp_path / "other")
    assert "must equal the folder name 'other'" in _problems(tmp_path / "other")[0]


@pytest.mark.parametrize("entry, code, message", [
    ("nowhere:run", None, "module 'nowhere' not found"),
    ("method:absent", None, "defines no top-level function 'absent'"),
    ("method", None, "must look like 'module:function'"),
    ("method:run", "def run(problem, extra):\n    pass\n", "exactly one required argument"),
    ("method:run", "def run():\n    pass\n", "exactly one required argument"),
    ("method:run", "async def run(problem):\n    pass\n", "plain function"),
    ("method:run", "def run(problem:\n", "syntax error"),
])
def test_entry_point_problems_are_found_without_running_code(tmp_path, entry, code, message):
    folder = write_submission(tmp_path, entry=entry, code=code)
    problems = _problems(folder)
    assert len(problems) == 1 and message in problems[0], problems


def test_entry_point_with_optional_arguments_is_fine(tmp_path):
    folder = write_submission(tmp_path, code="def run(problem, lr=0.1, *, verbose=False):\n    pass\n")
    assert _problems(folder) == []


def test_validation_never_imports_the_code(tmp_path):
    marker = tmp_path / "ran"
    folder = write_submission(tmp_path, code=f"open({str(marker)!r}, 'w').close()\ndef run(problem):\n    pass\n")
    assert _problems(folder) == [] and not marker.exists()


def test_load_raises_with_every_problem(tmp_path):
    folder = write_submission(tmp_path, tasks={"nope": "m:f", "planted-features": "method:absent"})
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    assert len(info.value.problems) == 2


def test_a_nested_git_repository_is_refused_and_git_never_runs_in_it(tmp_path):
    """A submission folder with its own .git: `git status` there would read the submitter's config,
    whose core.fsmonitor is a command (host code execution at `phasebench evaluate`, before any sandbox)."""
    import subprocess

    folder = write_submission(tmp_path)
    marker = tmp_path / "fsmonitor-ran"
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "config", "core.fsmonitor", f"touch {marker}; false"], check=True)
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=a", "-c", "user.email=a@b", "-c", "core.fsmonitor=false",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    spec, problems = validate_submission(folder)
    assert any(".git" in p and "not allowed" in p for p in problems), problems
    with pytest.raises(SubmissionError):
        load_submission(folder)
    assert not marker.exists(), "git ran the submission's fsmonitor hook"


def test_compiled_bytecode_is_refused_where_nothing_would_hash_it(tmp_path):
    """A sourceless .pyc would run without being part of the code hash (which skips bytecode)."""
    folder = write_submission(tmp_path)
    (folder / "helper.pyc").write_bytes(b"\0" * 16)
    _, problems = validate_submission(folder)
    assert any("helper.pyc" in p and "bytecode" in p for p in problems), problems


def test_an_unparsable_integer_or_a_symlink_loop_is_a_problem_not_a_traceback(tmp_path):
    big = write_submission(tmp_path, name="big")
    (big / "submission.yaml").write_text((big / "submission.yaml").read_text() + f"extra: {'9' * 5000}\n")
    _, problems = validate_submission(big)
    assert len(problems) == 1 and "submission.yaml: unreadable YAML (ValueError" in problems[0]
    loop = write_submission(tmp_path, name="loop")
    (loop / "a").symlink_to("b")
    (loop / "b").symlink_to("a")
    _, problems = validate_submission(loop)
    assert sorted(Path(p.split(":")[0]).name for p in problems) == ["a", "b"] and "leads nowhere" in problems[0]


def test_floor_and_fitted_on_are_declared_and_checked(tmp_path):
    floor = load_submission(write_submission(tmp_path, "const-floor", floor=True, fitted_on=["train"]))
    assert floor.spec.floor and not floor.spec.baseline and floor.spec.fitted_on == ["train"]
    problems = _problems(write_submission(tmp_path, "both", floor=True, baseline=True))
    assert any("either a floor" in p for p in problems)
    problems = _problems(write_submission(tmp_path, "on-test", fitted_on=["test"]))
    assert any("fitted_on" in p for p in problems)


def test_the_staged_copy_is_the_code_that_was_hashed(tmp_path):
    from evaluator.submission import staged_copy

    folder = write_submission(tmp_path, "staged")
    sub = load_submission(folder)
    with staged_copy(sub) as copy:
        assert copy != folder and (copy / "method.py").read_bytes() == (folder / "method.py").read_bytes()
        assert code_sha256(copy) == sub.code_sha256 and str(folder) not in str(copy)
    assert not copy.exists(), "the copy outlived its evaluation"
    (folder / "method.py").write_text((folder / "method.py").read_text() + "\n# changed after loading\n")
    with pytest.raises(SubmissionError, match="changed since it was loaded"):
        with staged_copy(sub):
            pass
