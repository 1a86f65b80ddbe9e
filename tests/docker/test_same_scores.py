"""The same scores from the bwrap and the docker sandbox for every baseline of planted-features
and scaling-exponents on the dev split, together with tests/evaluator/test_runner.py, which runs
four planted-features baselines on the whole split. Here the others, kept cheap: the two
smallest instances of the scaling-exponents dev split; for planted-features (relu-sae, which
trains a model per instance: 8 minutes for one dev instance in both sandboxes on a busy 2-core
host) one instance of the tiny builder split instead of the dev split."""
import dataclasses

import pytest

from benchmark.task import get_task
from evaluator.runner import evaluate_submission
from evaluator.sandbox import get_sandbox
from evaluator.submission import load_submission, validate_submission
from tests.builders import REPO, build_tiny_split, requires_bwrap, requires_docker

TASKS = ("planted-features", "scaling-exponents")
N_INSTANCES = {"planted-features": 1, "scaling-exponents": 2}
# Compared on the whole dev split by tests/evaluator/test_runner.py::test_bwrap_and_docker_give_the_same_scores.
COVERED_ELSEWHERE = {("random-atoms", "planted-features"), ("pca", "planted-features"),
                     ("dictionary-learning", "planted-features"), ("topk-sae", "planted-features")}


def _baselines():
    """(folder, task) of every valid reference submission (baseline or floor) answering one of TASKS."""
    out = []
    for spec_file in sorted((REPO / "submissions").glob("*/submission.yaml")):
        spec, problems = validate_submission(spec_file.parent)
        if spec and not problems and (spec.baseline or spec.floor):
            out += [(spec_file.parent.name, task) for task in TASKS if task in spec.tasks]
    return out


ALL_BASELINES = _baselines()
BASELINES = [pytest.param(name, task, id=f"{task}-{name}") for name, task in ALL_BASELINES
             if (name, task) not in COVERED_ELSEWHERE]


def test_every_baseline_of_both_tasks_is_compared_here_or_in_the_runner_test():
    from tests.evaluator import test_runner

    [mark] = [m for m in test_runner.test_bwrap_and_docker_give_the_same_scores.pytestmark if m.name == "parametrize"]
    assert {(name, "planted-features") for name in mark.args[1]} == COVERED_ELSEWHERE
    assert {t for _, t in ALL_BASELINES} == set(TASKS) and len(ALL_BASELINES) >= 9, ALL_BASELINES
    assert len(BASELINES) == len(ALL_BASELINES) - len(COVERED_ELSEWHERE)


@pytest.mark.slow
@requires_bwrap
@requires_docker
@pytest.mark.parametrize("baseline, task_name", BASELINES)
def test_bwrap_and_docker_give_the_same_scores(dev_split_of, sqlite_store, tmp_path, baseline, task_name):
    split = build_tiny_split(tmp_path / "data") if task_name == "planted-features" else dev_split_of(task_name)
    n = N_INSTANCES[task_name]
    smallest = sorted(split.instances, key=lambda r: (r.public.get("n_samples", 0), r.public.get("n_obs", 0), r.id))
    few = dataclasses.replace(split, instances=smallest[:n])
    sub, task = load_submission(REPO / "submissions" / baseline), get_task(task_name)
    scores = {}
    for name in ("bwrap", "docker"):
        out = evaluate_submission(sub, task, few, get_sandbox(name), sqlite_store, force=True)
        ev = sqlite_store.evaluation(out.evaluation_id, with_instances=True)
        assert ev.status == "complete", [(i.instance_id, i.status, i.error) for i in ev.instances]
        assert ev.sandbox == name
        scores[name] = {i.instance_id: i.metrics for i in ev.instances}
    assert len(scores["bwrap"]) == n and scores["bwrap"].keys() == scores["docker"].keys()
    for iid, metrics in scores["bwrap"].items():
        assert metrics == pytest.approx(scores["docker"][iid], abs=1e-9), iid
