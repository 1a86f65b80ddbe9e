"""Every registered task is checked by the same parametrised tests (as mteb does for TaskMetadata)."""
import filecmp

import pytest
from pydantic import ValidationError

from benchmark.metadata import DatasetRef, Metric, TaskMetadata
from benchmark.task import all_tasks

TASKS = list(all_tasks())


def _meta_kwargs(**over):
    base = TASKS[0].metadata.model_dump()
    base.update(over)
    return base


def test_unknown_key_rejected():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TaskMetadata(**_meta_kwargs(colour="blue"))


def test_headline_must_be_a_metric():
    with pytest.raises(ValidationError, match="headline 'accuracy' is not one of the metrics"):
        TaskMetadata(**_meta_kwargs(headline="accuracy"))


def test_dataset_revision_must_be_pinned():
    with pytest.raises(ValidationError, match="not pinned"):
        DatasetRef(repo_id="x/y", config="planted-features", revision="main")


def test_metric_direction_decides_better():
    up = Metric(name="a", description="", higher_is_better=True, best=1, worst=0)
    down = Metric(name="b", description="", higher_is_better=False, best=0, worst=1)
    assert up.better(0.9, 0.1) and not up.better(0.1, 0.9)
    assert down.better(0.1, 0.9) and not down.better(0.9, 0.1)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_registered_task_metadata(task):
    meta = task.metadata
    assert meta.headline in {m.name for m in meta.metrics}
    for m in meta.metrics:
        assert m.better(m.best, m.worst), f"{m.name}: best must beat worst in the declared direction"
    dev_groups = {s.group for s in task.instance_specs("dev", task.dev_seed)}
    test_groups = {s.group for s in task.instance_specs("test", 12345)}
    assert dev_groups <= set(meta.groups)
    assert test_groups == set(meta.groups), "the test split covers every group"
    dev_ids = [s.id for s in task.instance_specs("dev", task.dev_seed)]
    assert len(dev_ids) == len(set(dev_ids))


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_dev_build_is_byte_identical_and_matches_the_pin(task, tmp_path, dev_split_of):
    dev_split = dev_split_of(task.name)
    again = tmp_path / "again"
    rev = task.build("dev", task.dev_seed, again, again)
    assert rev == task.metadata.dataset.revision == dev_split.revision
    cmp = filecmp.dircmp(dev_split.root, again / task.name / "dev")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    for sub in ("inputs", "answers"):
        c = cmp.subdirs[sub]
        assert not c.diff_files and not c.left_only and not c.right_only
        _, mismatch, errors = filecmp.cmpfiles(dev_split.root / sub, again / task.name / "dev" / sub,
                                               c.common_files, shallow=False)
        assert not mismatch and not errors


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_test_split_seed_changes_the_data(task):
    a = task.instance_specs("test", 1)
    b = task.instance_specs("test", 2)
    assert [s.seed for s in a] != [s.seed for s in b]
    assert task.dev_seed not in {1, 2}
