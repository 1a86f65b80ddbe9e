import pytest

from benchmark.task import get_task
from evaluator.runner import evaluate_submission
from evaluator.sandbox import NoSandbox, get_sandbox
from evaluator.store import EvaluationStatus
from evaluator.submission import load_submission
from tests.builders import SANDBOX_PARAMS, write_submission

TASK = get_task("planted-features")
ORACLE_PEEK = """
import numpy as np
from safetensors.numpy import load_file
ANSWERS = {answers!r}

def run(problem):
    # Test-only oracle: reads the truth from the answers folder, which a sandboxed worker cannot see.
    return load_file(f"{{ANSWERS}}/{{problem['instance_id']}}.safetensors")["features"]
"""

MIXED = """
import numpy as np
def run(problem):
    if problem["instance_id"] == "tiny-1":
        raise RuntimeError("cannot handle this one")
    if problem["instance_id"] == "tiny-2":
        return np.ones((3, problem["dim"] + 1))
    return np.random.default_rng(0).standard_normal((problem["n_features"], problem["dim"]))
"""


def test_oracle_scores_one_without_a_sandbox(tmp_path, tiny_split, sqlite_store):
    code = ORACLE_PEEK.format(answers=str(tiny_split.answers_root / "answers"))
    sub = load_submission(write_submission(tmp_path, name="oracle", code=code))
    out = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert out.status == EvaluationStatus.COMPLETE and out.headline == 1.0 and out.ci == (1.0, 1.0)


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_a_broken_instance_fails_alone(tmp_path, tiny_split, sqlite_store, sandbox):
    sub = load_submission(write_submission(tmp_path, code=MIXED))
    out = evaluate_submission(sub, TASK, tiny_split, get_sandbox(sandbox), sqlite_store)
    assert out.status == EvaluationStatus.PARTIAL and out.n_failed == 2 and out.n_instances == 3
    ev = sqlite_store.evaluation(out.evaluation_id, with_instances=True)
    by_id = {r.instance_id: r for r in ev.instances}
    assert by_id["tiny-0"].status == "ok" and by_id["tiny-0"].error is None
    assert by_id["tiny-1"].status == "error" and "RuntimeError: cannot handle this one" in by_id["tiny-1"].error
    assert by_id["tiny-2"].status == "invalid" and "expected shape (m, 6)" in by_id["tiny-2"].error
    assert by_id["tiny-1"].metrics["recall@0.9"] == 0.0
    assert ev.sandbox == sandbox and ev.dataset_revision == tiny_split.revision
    assert ev.library_versions["numpy"] and ev.hardware["cores"] >= 1


def test_the_oracle_cannot_peek_inside_bwrap(tmp_path, tiny_split, sqlite_store):
    if not get_sandbox("bwrap").available()[0]:
        pytest.skip("bubblewrap sandbox unavailable")
    code = ORACLE_PEEK.format(answers=str(tiny_split.answers_root / "answers"))
    sub = load_submission(write_submission(tmp_path, name="oracle", code=code))
    out = evaluate_submission(sub, TASK, tiny_split, get_sandbox("bwrap"), sqlite_store)
    assert out.headline == 0.0 and out.n_failed == 3


def test_stored_result_is_reused_unless_forced(tmp_path, tiny_split, sqlite_store):
    sub = load_submission(write_submission(tmp_path))
    first = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    again = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert again.reused and again.evaluation_id == first.evaluation_id
    forced = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store, force=True)
    assert not forced.reused and forced.evaluation_id != first.evaluation_id


def test_changed_code_is_evaluated_again(tmp_path, tiny_split, sqlite_store):
    folder = write_submission(tmp_path)
    first = evaluate_submission(load_submission(folder), TASK, tiny_split, NoSandbox(), sqlite_store)
    (folder / "method.py").write_text((folder / "method.py").read_text() + "\n# v2\n")
    second = evaluate_submission(load_submission(folder), TASK, tiny_split, NoSandbox(), sqlite_store)
    assert not second.reused and second.evaluation_id != first.evaluation_id


class _InterruptAfter(NoSandbox):
    """A sandbox backend that behaves like an operator pressing Ctrl-C after n instances."""

    def __init__(self, n: int):
        self.left = n

    def run(self, job):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().run(job)


def test_interrupted_evaluation_never_looks_complete(tmp_path, tiny_split, sqlite_store):
    sub = load_submission(write_submission(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        evaluate_submission(sub, TASK, tiny_split, _InterruptAfter(1), sqlite_store)
    assert sqlite_store.latest_finished("planted-features", "dev") == []
    [row] = sqlite_store.evaluations_of("tiny-method")
    assert row.evaluation.status == EvaluationStatus.INTERRUPTED and row.evaluation.headline is None
    # ...and it is not reused: the next run evaluates afresh and completes.
    out = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert not out.reused and out.status == EvaluationStatus.COMPLETE


def test_test_split_without_answers_is_refused(tmp_path, sqlite_store):
    from benchmark.dataset import open_split
    from tests.builders import build_tiny_split

    build_tiny_split(tmp_path / "pub", split="test", answers_root=tmp_path / "priv")
    hidden = open_split("planted-features", "test", tmp_path / "pub", tmp_path / "elsewhere")
    sub = load_submission(write_submission(tmp_path))
    with pytest.raises(Exception, match="answers are not available"):
        evaluate_submission(sub, TASK, hidden, NoSandbox(), sqlite_store)


def test_infrastructure_failure_marks_the_evaluation_failed_not_partial(tmp_path, tiny_split, sqlite_store):
    from evaluator.sandbox import SandboxError

    class Broken(NoSandbox):
        def command(self, python, host, job):
            return ["false"], super().command(python, host, job)[1]

    sub = load_submission(write_submission(tmp_path))
    with pytest.raises(SandboxError):
        evaluate_submission(sub, TASK, tiny_split, Broken(), sqlite_store)
    [row] = sqlite_store.evaluations_of("tiny-method")
    assert row.evaluation.status == EvaluationStatus.FAILED and "could not start" in row.evaluation.note
    assert sqlite_store.latest_finished("planted-features", "dev") == []


@pytest.mark.slow
@pytest.mark.parametrize("baseline", ["random-atoms", "pca", "dictionary-learning", "topk-sae"])
def test_bwrap_and_docker_give_the_same_scores(tmp_path, dev_split, sqlite_store, baseline):
    from tests.builders import REPO, requires_bwrap, requires_docker

    for mark in (requires_bwrap, requires_docker):
        if mark.args[0]:
            pytest.skip(mark.kwargs["reason"])
    sub = load_submission(REPO / "submissions" / baseline)
    task = get_task("planted-features")
    scores = {}
    for name in ("bwrap", "docker"):
        out = evaluate_submission(sub, task, dev_split, get_sandbox(name), sqlite_store, force=True)
        ev = sqlite_store.evaluation(out.evaluation_id, with_instances=True)
        assert ev.status == "complete"
        scores[name] = {i.instance_id: i.metrics for i in ev.instances}
    assert scores["bwrap"].keys() == scores["docker"].keys()
    for iid, metrics in scores["bwrap"].items():
        assert metrics == pytest.approx(scores["docker"][iid], abs=1e-9), iid
