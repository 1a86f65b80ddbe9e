"""The one answer validator (benchmark/answers.py), checked on every registered task from its declared
answer schema: a valid answer built from the schema passes, and each way of breaking one field is
refused with an AnswerError naming the instance and the field."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from benchmark.answers import AnswerError, check_schema, scalar
from benchmark.dataset import InstanceRecord
from benchmark.metadata import AnswerField, FieldSpec, TaskMetadata, parse_dim
from benchmark.task import Task, all_tasks

TASKS = {t.name: t for t in all_tasks()}


def _record(task: Task) -> InstanceRecord:
    """An instance of the task: every public integer field 5, other fields left out (no shape reads them)."""
    ints = {k: 5 for k, spec in task.metadata.input_schema.items() if spec.kind == "int"}
    return InstanceRecord(id=f"{task.name}-probe", group=task.metadata.groups[0], public=ints)


def _inside(spec: AnswerField) -> float:
    low, high = spec.lower, spec.upper
    if low and high:
        return (low[0] + high[0]) / 2
    return low[0] + 1.0 if low else high[0] - 1.0 if high else 0.5


def _shape(spec: AnswerField, record: InstanceRecord) -> tuple[int, ...]:
    sizes = []
    for dim in spec.shape or []:
        parsed = parse_dim(dim)
        sizes.append(parsed.size if parsed.size is not None else
                     int(record.public[parsed.field or parsed.bound or ""]))
    return tuple(sizes)


def _valid(task: Task, record: InstanceRecord) -> dict[str, np.ndarray]:
    """Every declared field, optional ones too, at a value inside its bounds. One value for every
    field also satisfies the tasks' own checks (upper >= p_hat, loss_low <= loss_high)."""
    schema = task.metadata.answer_schema
    return {name: np.full(_shape(spec, record), _inside(spec)) for name, spec in schema.items()}


def _broken(task: Task, record: InstanceRecord) -> list[tuple[str, str, dict]]:
    """(case, field the message must name, answer) for each way of breaking each field."""
    schema = task.metadata.answer_schema
    valid = _valid(task, record)
    cases = [("extra field", "not_a_field", {**valid, "not_a_field": np.array(1.0)})]
    for name, spec in schema.items():
        good = valid[name]
        if spec.required:
            cases.append(("missing", name, {k: v for k, v in valid.items() if k != name}))
        if spec.kind == "scalar":
            # (1, 1): the shape no task's hand-written validator refused before the schema was enforced
            cases += [("shape (2,)", name, {**valid, name: np.full(2, good)}),
                      ("shape (1, 1)", name, {**valid, name: good.reshape(1, 1)})]
        else:
            cases += [("extra dimension", name, {**valid, name: good[..., None]}),
                      ("one too many rows", name, {**valid, name: np.concatenate([good, good[:1]])})]
        cases.append(("NaN", name, {**valid, name: np.full(good.shape, np.nan)}))
        if spec.finite:
            cases.append(("inf", name, {**valid, name: np.full(good.shape, np.inf)}))
        cases.append(("object dtype", name, {**valid, name: np.full(good.shape, None, dtype=object)}))
        cases.append(("text", name, {**valid, name: np.full(good.shape, "1.0")}))
        low, high = spec.lower, spec.upper
        if low:
            cases.append(("below the lower bound", name,
                          {**valid, name: np.full(good.shape, low[0] if low[1] else low[0] - 0.5)}))
        if high:
            cases.append(("above the upper bound", name,
                          {**valid, name: np.full(good.shape, high[0] if high[1] else high[0] + 0.5)}))
    return cases


CASES = [(name, case, field) for name, task in TASKS.items() for case, field, _ in _broken(task, _record(task))]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_valid_answer_built_from_the_schema_passes(name):
    task = TASKS[name]
    record = _record(task)
    clean = task.validate_answer(_valid(task, record), record)
    assert set(clean) == set(task.metadata.answer_schema)
    for field, spec in task.metadata.answer_schema.items():
        assert clean[field].dtype == np.float64
        assert clean[field].shape == (() if spec.kind == "scalar" else _shape(spec, record))


@pytest.mark.parametrize("name, case, field", CASES, ids=[f"{n}-{f}-{c}" for n, c, f in CASES])
def test_each_broken_field_is_refused_naming_the_instance_and_field(name, case, field):
    task = TASKS[name]
    record = _record(task)
    answer = next(a for c, f, a in _broken(task, record) if (c, f) == (case, field))
    with pytest.raises(AnswerError) as info:
        task.validate_answer(answer, record)
    message = str(info.value)
    assert f"instance {record.id}: " in message and field in message, message


def test_every_task_declares_a_case_of_each_kind():
    """The cases above exercise bounds and both kinds of field somewhere: a schema change that left no
    bounded field would leave those branches of the validator untested."""
    cases = {c for _, c, _ in CASES}
    assert {"missing", "extra field", "shape (1, 1)", "one too many rows", "NaN", "inf", "object dtype",
            "below the lower bound", "above the upper bound"} <= cases


@pytest.mark.parametrize("name, answer", [
    ("grokking-onset", {"t_grok": np.array([[1000.0]])}),
    ("rare-behavior", {"p_hat": np.array([[0.1]]), "upper": np.array(0.2)}),
    ("scaling-exponents", {"loss": np.ones(5), "alpha": np.array([[0.5]])}),
])
def test_a_scalar_field_refuses_a_one_element_matrix(name, answer):
    """The schemas declared these fields scalars, but each task's own validator took any one-element
    array (a (1, 1) 'scalar' is usually a model output left unsqueezed). Shape () and (1,) still pass."""
    task = TASKS[name]
    record = InstanceRecord(id="x", group=task.metadata.groups[0], public={"n_query": 5})
    field = next(k for k, v in answer.items() if v.ndim == 2)
    with pytest.raises(AnswerError, match=rf"instance x: {field}: expected a scalar .*got shape \(1, 1\)"):
        task.validate_answer(answer, record)
    flat = task.validate_answer({k: v.reshape(-1) for k, v in answer.items()}, record)
    assert flat[field].shape == ()


# --- the messages the evaluator stores (tests/evaluator/hostile asserts some of them) ------------------

PLANTED = TASKS["planted-features"]
PLANTED_RECORD = InstanceRecord(id="i7", group="T0", public={"n_features": 4, "dim": 3, "n_samples": 10})


@pytest.mark.parametrize("answer, message", [
    ({"atoms": np.ones((1, 3)), "extra": np.ones(1)},
     r"instance i7: unknown answer fields \['extra'\]; expected exactly the field 'atoms', got \['atoms', 'extra'\]"),
    ({}, r"instance i7: atoms: missing; expected exactly the field 'atoms', got \[\]"),
    ({"atoms": np.ones((5, 3))}, r"instance i7: atoms: expected shape \(m, 3\) with m <= n_features = 4, got \(5, 3\)"),
    ({"atoms": np.ones((2, 4))}, r"instance i7: atoms: expected shape \(m, 3\) with m <= n_features = 4, got \(2, 4\)"),
    ({"atoms": np.array([[1.0, 2.0, np.nan]])},
     r"instance i7: atoms: contains NaN or inf \(first at index \(0, 2\)\), expected finite numbers"),
    ({"atoms": np.array([["a", "b", "c"]])}, "instance i7: atoms: expected a real array, got dtype <U1"),
])
def test_messages_say_what_was_expected_and_what_was_given(answer, message):
    with pytest.raises(AnswerError, match=message):
        PLANTED.validate_answer(answer, PLANTED_RECORD)


def test_optional_fields_are_named_as_such():
    task = TASKS["scaling-exponents"]
    with pytest.raises(AnswerError, match="loss: missing; expected the field 'loss' and optionally 'alpha', 'beta', "
                                          "'loss_low' and 'loss_high'"):
        task.validate_answer({"alpha": np.array(0.3)}, InstanceRecord(id="x", group="A", public={"n_query": 3}))


def test_the_scorer_gets_float64_copies():
    given = np.ones((2, 3), dtype=np.float32)
    clean = PLANTED.validate_answer({"atoms": given}, PLANTED_RECORD)
    assert clean["atoms"].dtype == np.float64 and not np.shares_memory(clean["atoms"], given)
    assert PLANTED.validate_answer({"atoms": np.ones((0, 3), dtype=bool)}, PLANTED_RECORD)["atoms"].shape == (0, 3)


def test_inf_where_the_schema_allows_it():
    """grokking-onset's 'never' is any step >= T, inf included; NaN is still refused."""
    task = TASKS["grokking-onset"]
    record = InstanceRecord(id="x", group=task.metadata.groups[0], public={"budget": 1000})
    assert float(task.validate_answer({"t_grok": np.array(math.inf)}, record)["t_grok"]) == math.inf
    with pytest.raises(AnswerError, match=r"t_grok: is NaN, expected a real \(inf allowed\) number"):
        task.validate_answer({"t_grok": np.array(math.nan)}, record)


def test_a_shape_field_the_instance_lacks_is_the_tasks_bug_not_the_answers():
    schema = {"w": AnswerField(kind="array", shape=["dim"], description="w")}
    with pytest.raises(KeyError, match="needs the public field 'dim'"):
        check_schema(schema, {"w": np.ones(3)}, InstanceRecord(id="x", group="g", public={}))


# --- the schema model --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "array"}, "needs a shape"),
    ({"kind": "array", "shape": []}, "needs a shape"),
    ({"kind": "scalar", "shape": ["3"]}, "takes no shape"),
    ({"kind": "array", "shape": ["n<="]}, "not a size, a public field"),
    ({"kind": "array", "shape": ["Dim"]}, "not a size, a public field"),
    ({"kind": "scalar", "gt": 0.0, "ge": 0.0}, "at most one lower bound"),
    ({"kind": "scalar", "ge": 2.0, "le": 1.0}, r"bounds in \[2, 1\] admit no value"),
    ({"kind": "scalar", "dtype": "object"}, "Input should be 'real'"),
])
def test_answer_field_rejects_inconsistent_declarations(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        AnswerField(description="x", **kwargs)


def test_answer_shape_must_refer_to_integer_input_fields():
    base = TASKS["planted-features"].metadata.model_dump()
    base["answer_schema"] = {"atoms": {"kind": "array", "shape": ["m<=n_atoms", "dim"], "description": "x"}}
    with pytest.raises(ValidationError, match="refers to 'n_atoms', which is not an integer field"):
        TaskMetadata(**base)
    base["input_schema"] = {**base["input_schema"],
                            "n_atoms": FieldSpec(kind="str", description="x", public_because="x").model_dump()}
    with pytest.raises(ValidationError, match="refers to 'n_atoms', which is not an integer field"):
        TaskMetadata(**base)


def test_scalar_reads_one_number_and_refuses_more():
    assert scalar(np.array([2.5], dtype=np.float32)) == 2.5 and scalar(3) == 3.0
    with pytest.raises(ValueError, match=r"expected one number, got shape \(2,\)"):
        scalar(np.ones(2))
