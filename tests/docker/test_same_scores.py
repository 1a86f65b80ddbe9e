"""The same scores from the bwrap and the docker sandbox for every baseline and floor of
planted-features and scaling-exponents: the sandboxes must agree per instance, which no split size
changes, so each is compared on the smallest dev instances (by input size; two for scaling-exponents,
whose instances are cheap, one for planted-features). relu-sae trains a model per instance (8 minutes
for one dev instance in both sandboxes on a busy 2-core host): one instance of the tiny builder split."""
import pytest

from benchmark.task import get_task
from evaluator.runner import evaluate_submission
from evaluator.sandbox import get_sandbox
from evaluator.submission import load_submission, validate_submission
from tests.builders import REPO, build_tiny_split, requires_bwrap, requires_docker, smallest_instances

TASKS = ("planted-features", "scaling-exponents")
N_INSTANCES = {"planted-features": 1, "scaling-exponents": 2}
ON_THE_TINY_SPLIT = {("relu-sae", "planted-features")}


def _baselines():
    """(folder, task) of every valid reference submission (baseline or floor) answering one of TASKS."""
    out = []
    for spec_file in sorted((REPO / "submissions").glob("*/submission.yaml")):
        spec, problems = validate_submission(spec_file.parent)
        if spec and not problems and (spec.baseline or spec.floor):
            out += [(spec_file.parent.name, task) for task in TASKS if task in spec.tasks]
    return out


BASELINES = [pytest.param(name, task, id=f"{task}-{name}") for name, task in _baselines()]


def test_every_baseline_of_both_tasks_is_compared():
    assert {p.values[1] for p in BASELINES} == set(TASKS) and len(BASELINES) >= 13, BASELINES
    assert ON_THE_TINY_SPLIT <= {tuple(p.values) for p in BASELINES}


@pytest.mark.slow
@requires_bwrap
@requires_docker
@pytest.mark.parametrize("baseline, task_name", BASELINES)
def test_bwrap_and_docker_give_the_same_scores(dev_split_of, sqlite_store, tmp_path, baseline, task_name):
    tiny = (baseline, task_name) in ON_THE_TINY_SPLIT
    split = build_tiny_split(tmp_path / "data") if tiny else dev_split_of(task_name)
    n = N_INSTANCES[task_name]
    few = smallest_instances(split, n)
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
