"""grok-floor-resimulate re-trains a run from its public configuration: its onset rule and its
recovered logging grid must be the task's, and its limits the task's declared ones."""
import importlib.util

import numpy as np

from benchmark.task import get_task
from benchmark.tasks.grokking_onset.answer import onset
from tests.builders import REPO

FOLDER = REPO / "submissions" / "grok-floor-resimulate"


def _method():
    spec = importlib.util.spec_from_file_location("grok_floor_resimulate", FOLDER / "method.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_grid_and_onset_rule_are_the_tasks_on_every_dev_run(dev_split_of):
    """From the observed steps alone it recovers the whole logged grid, and fed the full committed
    curves its onset rule finds the committed grok step of every run that groks."""
    method = _method()
    split = dev_split_of("grokking-onset")
    groks = 0
    for record in split.instances:
        info = split.load_answer_info(record.id)
        steps = np.asarray(info["steps"])
        budget = int(record.public["budget"])
        assert np.array_equal(method.logged_grid(split.load_inputs(record.id)["steps"], budget), steps), record.id
        truth = onset(steps, np.asarray(info["train_acc"]), np.asarray(info["test_acc"]), budget)
        seen = method.Onset()
        found = next((g for t, a, b in zip(steps, info["train_acc"], info["test_acc"])
                      if (g := seen.log(int(t), a, b)) is not None), None)
        if truth.t_grok is not None:
            groks += 1
            assert found == truth.t_grok, record.id
    assert groks >= 30


def test_its_limits_are_the_tasks():
    method = _method()
    limits = get_task("grokking-onset").metadata.limits
    assert limits.wall_time_by is not None and method.LIMIT_S == limits.wall_time_by.seconds
    assert method.DEFAULT_LIMIT_S == limits.wall_time_s
