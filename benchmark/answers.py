"""The one answer validator: a method's answer checked against its task's declared answer schema.

Every task declares its answer fields (:class:`~benchmark.metadata.AnswerField`: scalar or array with
a shape in terms of the instance's public fields, bounds, finiteness, whether required); this module
checks an answer against that declaration and the instance, and hands the scorer float64 arrays.
What only a task knows (an upper bound must not be below the estimate) it checks afterwards, in
``Task.check_answer``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .dataset import InstanceRecord
from .metadata import AnswerField, parse_dim

__all__ = ["AnswerError", "check_schema", "scalar"]

#: Kinds of dtype an answer may hold: bool, signed and unsigned integers, floating point.
_REAL_KINDS = "biuf"


class AnswerError(ValueError):
    """A method's answer has the wrong type, shape or values; the message says which."""


def scalar(x: Any) -> float:
    """One number from an answer or a stored truth. The validator cleans a scalar answer to shape ();
    a truth written by an older safetensors comes back with shape (1,)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size != 1:
        raise ValueError(f"expected one number, got shape {arr.shape}")
    return float(arr.reshape(()))


def check_schema(schema: Mapping[str, AnswerField], answer: Mapping[str, Any],
                 record: InstanceRecord) -> dict[str, np.ndarray]:
    """The answer's fields as float64 arrays (a scalar with shape ()), or AnswerError naming the
    instance, the field, what was expected and what was given."""
    where = f"instance {record.id}"
    given = sorted(map(str, answer))
    unknown = [k for k in given if k not in schema]
    missing = [k for k, spec in schema.items() if spec.required and k not in answer]
    if unknown:
        raise AnswerError(f"{where}: unknown answer fields {unknown}; {_expected_fields(schema)}, got {given}")
    if missing:
        raise AnswerError(f"{where}: {', '.join(missing)}: missing; {_expected_fields(schema)}, got {given}")
    return {name: _check_field(f"{where}: {name}", spec, answer[name], record)
            for name, spec in schema.items() if name in answer}


def _expected_fields(schema: Mapping[str, AnswerField]) -> str:
    required = [f"'{k}'" for k, s in schema.items() if s.required]
    optional = [f"'{k}'" for k, s in schema.items() if not s.required]
    if not optional:
        return f"expected exactly the field{'s' if len(required) > 1 else ''} {_join(required)}"
    head = f"the field{'s' if len(required) > 1 else ''} {_join(required)} and optionally " if required else ""
    return f"expected {head}{_join(optional)}"


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _check_field(label: str, spec: AnswerField, value: Any, record: InstanceRecord) -> np.ndarray:
    noun = "number" if spec.kind == "scalar" else "array"
    try:
        arr = np.asarray(value)
    except Exception as exc:  # a ragged list and the like: nothing numpy can hold as one array
        raise AnswerError(f"{label}: expected a real {noun}, got {type(value).__name__} ({exc})") from None
    if arr.dtype.kind not in _REAL_KINDS:
        raise AnswerError(f"{label}: expected a real {noun}, got dtype {arr.dtype}")
    if spec.kind == "scalar":
        # (1,) too: a one-element vector is how many libraries hand back a single value.
        if arr.shape not in ((), (1,)):
            raise AnswerError(f"{label}: expected a scalar (shape () or (1,)), got shape {arr.shape}")
        arr = arr.reshape(())
    else:
        _check_shape(label, spec.shape or [], arr.shape, record)
    arr = arr.astype(np.float64)  # a copy: the scorer never shares memory with what the method gave
    _check_values(label, spec, arr)
    return arr


def _check_shape(label: str, dims: list[str], shape: tuple[int, ...], record: InstanceRecord) -> None:
    expected: list[str] = []
    limits: list[str] = []
    ok = len(shape) == len(dims)
    for i, dim in enumerate(dims):
        parsed = parse_dim(dim)
        got = shape[i] if i < len(shape) else None
        if parsed.size is not None:
            expected.append(str(parsed.size))
            ok = ok and got == parsed.size
        elif parsed.field is not None:
            size = _public_int(record, parsed.field)
            expected.append(str(size))
            ok = ok and got == size
        else:
            assert parsed.bound is not None and parsed.free is not None, "the model parses every dimension"
            bound = _public_int(record, parsed.bound)
            expected.append(parsed.free)
            limits.append(f"{parsed.free} <= {parsed.bound} = {bound}")
            ok = ok and got is not None and got <= bound
    if not ok:
        text = f"({', '.join(expected)}{',' if len(expected) == 1 else ''})"
        raise AnswerError(f"{label}: expected shape {text}{' with ' + ', '.join(limits) if limits else ''}, "
                          f"got {shape}")


def _public_int(record: InstanceRecord, field: str) -> int:
    if field not in record.public:
        # The metadata ties every shape to a declared input field: a record without it is the task's bug.
        raise KeyError(f"instance {record.id}: the answer's shape needs the public field {field!r}, which the"
                       f" instance lacks (it has {sorted(record.public)})")
    return int(record.public[field])


def _check_values(label: str, spec: AnswerField, arr: np.ndarray) -> None:
    scalar_kind = arr.ndim == 0
    bad = np.isnan(arr) if not spec.finite else ~np.isfinite(arr)
    if bad.any():
        what = "NaN or inf" if spec.finite else "NaN"
        expected = "finite" if spec.finite else "real (inf allowed)"
        if scalar_kind:
            raise AnswerError(f"{label}: is {what}, expected a {expected} number")
        raise AnswerError(f"{label}: contains {what} (first at index {_first(bad)}), expected {expected} numbers")
    low, high = spec.lower, spec.upper
    if low is None and high is None:
        return
    inside = np.ones(arr.shape, dtype=bool)
    if low is not None:
        inside &= arr > low[0] if low[1] else arr >= low[0]
    if high is not None:
        inside &= arr < high[0] if high[1] else arr <= high[0]
    if not inside.all():
        if scalar_kind:
            raise AnswerError(f"{label}: expected a value {spec.bounds_text()}, got {float(arr)!r}")
        i = _first(~inside)
        raise AnswerError(f"{label}: expected every value {spec.bounds_text()}, got {float(arr[i])!r} at index {i}")


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(j) for j in np.argwhere(mask)[0])
