"""Every registered task is checked by the same parametrised tests (as mteb does for TaskMetadata)."""
import filecmp
import json
import math
import platform

import pytest
from pydantic import ValidationError

from benchmark.build_env import reference_env_in_effect
from benchmark.dataset import SplitWriter, open_split
from benchmark.metadata import DatasetRef, FieldSpec, Metric, PlotSpec, ResourceLimits, TaskMetadata, WallTimeBy
from benchmark.split_secret import SplitSecret, new_secret_text
from benchmark.task import DEV_SECRET, all_tasks
from tests.builders import one_per_group

TASKS = list(all_tasks())
FRESH = SplitSecret.parse(new_secret_text(), "a fresh secret")

# The perfect answer of a task whose answer fields are not simply its truth's fields of the same name.
ORACLE_ANSWERS = {
    "planted-features": lambda truth: {"atoms": truth["features"]},
    "rare-behavior": lambda truth: {"p_hat": truth["p"].reshape(()), "upper": truth["p"].reshape(())},
    "rare-behavior-whitebox": lambda truth: {"p_hat": truth["p"].reshape(()), "upper": truth["p"].reshape(())},
}


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


def _plot(**over):
    base = dict(name="p", title="P", x="a", y="metric:m", x_label="A", y_label="M")
    base.update(over)
    return base


def test_plot_spec_rejects_unknown_keys_and_other_kinds():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PlotSpec(**_plot(colour="red"))
    with pytest.raises(ValidationError, match="kind"):
        PlotSpec(**_plot(kind="histogram"))


def test_plot_spec_splits_metric_and_detail_axes():
    spec = PlotSpec(**_plot(x="n_over_d", y="metric:recall@0.9"))
    assert spec.metric_axes() == ["recall@0.9"] and spec.detail_keys() == ["n_over_d"]
    assert spec.kind == "scatter" and not spec.x_log and not spec.diagonal and spec.caption == ""


def test_plot_names_must_be_unique():
    headline = TASKS[0].metadata.headline
    plot = _plot(y=f"metric:{headline}")
    with pytest.raises(ValidationError, match="duplicate plot names"):
        TaskMetadata(**_meta_kwargs(plots=[plot, plot]))


def test_plot_must_refer_to_a_declared_metric():
    with pytest.raises(ValidationError, match="refers to metric:accuracy, which is not one of the metrics"):
        TaskMetadata(**_meta_kwargs(plots=[_plot(y="metric:accuracy")]))


def test_breakdown_names_must_be_unique():
    from benchmark.metadata import Breakdown

    b = Breakdown(name="decade", key="decade", title="By decade")
    with pytest.raises(ValidationError, match="duplicate breakdown names"):
        TaskMetadata(**_meta_kwargs(breakdowns=[b, b]))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Breakdown(name="decade", key="decade", title="t", order="numeric")


def test_metadata_looks_up_plots_by_name():
    headline = TASKS[0].metadata.headline
    meta = TaskMetadata(**_meta_kwargs(plots=[_plot(y=f"metric:{headline}")]))
    assert meta.plot("p").y == f"metric:{headline}"
    with pytest.raises(KeyError, match="no plot 'q'"):
        meta.plot("q")


def test_metric_direction_decides_better():
    up = Metric(name="a", description="", higher_is_better=True, best=1, worst=0)
    down = Metric(name="b", description="", higher_is_better=False, best=0, worst=1)
    assert up.better(0.9, 0.1) and not up.better(0.1, 0.9)
    assert down.better(0.1, 0.9) and not down.better(0.9, 0.1)


def _with_wall_time_by(by: dict) -> dict:
    """Metadata keyword arguments with a str field ``kind``, an int field ``size`` and limits by ``by``."""
    base = _meta_kwargs()
    schema = {**base["input_schema"],
              "kind": FieldSpec(kind="str", description="k", public_because="the question").model_dump(),
              "size": FieldSpec(kind="int", description="n", public_because="the question").model_dump()}
    return {**base, "input_schema": schema,
            "limits": {"wall_time_s": 7, "memory_mb": 100, "output_mb": 1, "wall_time_by": by}}


def test_wall_time_by_a_public_str_field_gives_each_instance_its_limit():
    meta = TaskMetadata(**_with_wall_time_by({"field": "kind", "seconds": {"a": 2, "b": 30}}))
    lim = meta.limits
    assert lim.wall_time_for({"kind": "a"}) == 2 and lim.wall_time_for({"kind": "b"}) == 30
    assert lim.wall_time_for({"kind": "c"}) == 7 and lim.wall_time_for({}) == 7   # not listed: wall_time_s
    one = lim.for_instance({"kind": "b", "size": 3})
    assert one.wall_time_s == 30 and one.wall_time_by is None and one.memory_mb == 100
    plain = ResourceLimits(wall_time_s=9, memory_mb=1, output_mb=1)
    assert plain.for_instance({"kind": "a"}) is plain


@pytest.mark.parametrize("by, match", [
    ({"field": "size", "seconds": {"1": 2}}, "'size' is not a public field of kind 'str'"),
    ({"field": "seed", "seconds": {"a": 2}}, "'seed' is not a public field of kind 'str'"),
    ({"field": "kind", "seconds": {"a": 0}}, "must be finite and > 0"),
    ({"field": "kind", "seconds": {"a": float("inf")}}, "must be finite and > 0"),
    ({"field": "kind", "seconds": {}}, "at least 1 item"),
    ({"field": "kind", "seconds": {"a": 2}, "default": 3}, "Extra inputs are not permitted"),
])
def test_wall_time_by_is_validated_against_the_input_schema(by, match):
    with pytest.raises(ValidationError, match=match):
        TaskMetadata(**_with_wall_time_by(by))


def test_wall_time_by_rejects_unknown_keys_on_its_own():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        WallTimeBy.model_validate({"field": "kind", "seconds": {"a": 1}, "by": "kind"})


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_per_instance_limits_list_every_dev_value(task, dev_split_of):
    """A task that sets its wall time per value of a field names every value its dev split has: no
    instance falls back to the default limit unnoticed."""
    by = task.metadata.limits.wall_time_by
    if by is None:
        return
    values = {str(r.public[by.field]) for r in dev_split_of(task.name).instances}
    assert values <= set(by.seconds), f"{task.name}: {sorted(values - set(by.seconds))} have no limit of their own"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_registered_task_metadata(task):
    meta = task.metadata
    assert meta.headline in {m.name for m in meta.metrics}
    for m in meta.metrics:
        assert m.better(m.best, m.worst), f"{m.name}: best must beat worst in the declared direction"
    dev_groups = {s.group for s in task.instance_specs("dev")}
    test_groups = {s.group for s in task.instance_specs("test", FRESH)}
    assert dev_groups <= set(meta.groups)
    assert test_groups == set(meta.groups), "the test split covers every group"
    dev_ids = [s.id for s in task.instance_specs("dev")]
    assert len(dev_ids) == len(set(dev_ids)) and dev_ids == sorted(dev_ids), "unique, stored in id order"


@pytest.mark.slow  # rebuilds a dev split (planted-features: 30 s)
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_dev_build_is_byte_identical_and_matches_the_pin(task, tmp_path, dev_split_of):
    """The embedded dev files are the pinned revision (every file against the manifest), the code still
    draws exactly their instances and parameters, and one instance of every group, generated again
    from its spec alone, is the same bytes. (Regenerating the whole split proves no more per instance
    and cost the suite four minutes on the rare-behavior tasks; ``phasebench data build`` before the
    suite rebuilds every split and verifies it against the pin.)"""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"the pins are x86-64 builds; this is {platform.machine()}")
    in_effect, why = reference_env_in_effect()
    assert in_effect, f"the reference build environment is off ({why}); tests/conftest.py sets it"
    if task.dev_split_committed:
        pytest.skip(f"{task.name}: the dev files are committed (too long to rebuild in every test run); the "
                    "task's own test retrains a prefix of them")
    dev_split = dev_split_of(task.name)
    assert dev_split.revision == task.metadata.dataset.revision
    dev_split.verify()
    specs = task.instance_specs("dev")
    assert [s.id for s in specs] == [r.id for r in dev_split.instances]
    for spec, record in zip(specs, dev_split.instances):
        assert record.group == spec.group, spec.id
        assert dev_split.load_answer_info(spec.id)["params"] == json.loads(json.dumps(spec.params)), spec.id

    sample = {r.id for r in one_per_group(dev_split).instances}
    writer = SplitWriter(tmp_path, task.name, "dev", tmp_path, group_public=task.metadata.group_public)
    for spec in specs:
        if spec.id in sample:
            task.write_instance(writer, spec)
    writer.close()
    again = open_split(task.name, "dev", tmp_path)
    assert [r.id for r in again.instances] == sorted(sample)
    stored = {r.id: r for r in dev_split.instances}
    for record in again.instances:
        assert record == stored[record.id], f"{record.id}: index rows differ"
        for rel in (f"inputs/{record.id}.safetensors", f"answers/{record.id}.safetensors"):
            assert filecmp.cmp(again.root / rel, (dev_split.answers_root if rel.startswith("answers") else
                                                  dev_split.root) / rel, shallow=False), f"{rel} differs"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_the_test_split_is_the_secrets_and_never_the_public_keys(task):
    a, b = task.instance_specs("test", FRESH), task.instance_specs("test", SplitSecret.parse(new_secret_text(), "b"))
    assert [s.seed for s in a] != [s.seed for s in b] and {s.id for s in a}.isdisjoint(s.id for s in b)
    with pytest.raises(ValueError, match="operator's secret"):
        task.instance_specs("test")
    with pytest.raises(ValueError, match="operator's secret"):
        task.instance_specs("test", DEV_SECRET)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_the_public_index_holds_exactly_the_declared_fields(task, dev_split_of):
    """Every public field is declared with the reason it may be public, and nothing else is public: the
    index's keys are the declared scalar inputs (and the group only where the task says it is public),
    the input files hold only declared arrays."""
    split = dev_split_of(task.name)
    declared = task.metadata.input_schema
    scalars = {k for k, f in declared.items() if f.kind != "array"}
    arrays = {k for k, f in declared.items() if f.kind == "array"}
    for record in split.instances:
        assert set(record.public) == scalars, record.id
        assert record.group_public == task.metadata.group_public
        for name in split.load_inputs(record.id):
            assert name in arrays or any(k.endswith("*") and name.startswith(k[:-1]) for k in arrays), name
    assert all(f.public_because for f in declared.values())


def _oracle_answer(task, truth):
    if task.name in ORACLE_ANSWERS:
        return ORACLE_ANSWERS[task.name](truth)
    # optional answer fields (e.g. intervals) the truth lacks are left out
    answer = {k: truth[k] for k in task.metadata.answer_schema if k in truth}
    if not answer:
        pytest.fail(f"{task.name}: no answer field {sorted(task.metadata.answer_schema)} is in the truth"
                    f" {sorted(truth)}; add the task's perfect answer to ORACLE_ANSWERS in {__file__}")
    return answer


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_plot_reads_keys_the_task_produces(task, dev_split_of):
    """Details of a perfect answer carry every key the task's plots read, as finite numbers; a failed
    instance still gives JSON scalars (the truth side of a plot stays known)."""
    dev_split = dev_split_of(task.name)
    record = dev_split.instances[0]
    truth = dev_split.load_answer(record.id)
    clean = task.validate_answer(_oracle_answer(task, truth), record)
    details = task.instance_details(clean, truth, record)
    failed = task.instance_details(None, truth, record)
    for value in [*details.values(), *failed.values()]:
        assert value is None or isinstance(value, (int, float, str)), f"{task.name}: {value!r} is not a scalar"
    metrics = set(task.score(clean, truth, record))
    for plot in task.metadata.plots:
        for key in plot.detail_keys():
            assert key in details, f"{task.name}: plot {plot.name} reads {key!r}, not in {sorted(details)}"
            value = details[key]
            assert isinstance(value, (int, float)) and math.isfinite(value), f"{plot.name}: {key}={value!r}"
            if key in (plot.x if plot.x_log else None, plot.y if plot.y_log else None):
                assert value > 0, f"{task.name}: plot {plot.name} has log axes but {key}={value}"
        assert set(plot.metric_axes()) <= metrics
    for breakdown in task.metadata.breakdowns:
        # a failed instance must still fall in its slice, or failures would vanish from the table
        for d in (details, failed):
            assert d.get(breakdown.key) is not None, f"{task.name}: breakdown {breakdown.name} reads {breakdown.key!r}"
