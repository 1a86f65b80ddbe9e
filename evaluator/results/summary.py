"""The stored summary of an evaluation (``Evaluation.metrics``): the one definition that the writer
(the runner, from ``benchmark.stats.aggregate``) and every reader (the leaderboard, the CLI) share.

Stored shape (a JSON object; ``n_unranked`` and ``breakdowns`` are absent when there are none)::

    {"n_instances": 12, "n_unranked": 2,
     "metrics": {"recall@0.9": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 10,
                                "nominal": 0.95, "binom_p": 0.01, "below_nominal": true}},
     "groups": {"T1": {"n": 5, "recall@0.9": 0.4}},
     "breakdowns": {"architecture": {"mlp": {"n": 5, "recall@0.9": 0.4}}}}

Writing is strict (:meth:`EvaluationSummary.for_storage`): a number is finite or None, every key is
one this model knows. Reading is tolerant (:meth:`EvaluationSummary.from_stored`), as rows written
by older evaluators, by hand or by a newer evaluator must still show: an entry of an odd shape is
skipped, a number that is missing, a string, NaN or infinite reads as None, unknown keys are left
out, and a row of a newer format than :data:`RECORD_FORMAT` says so (``newer_format``).
"""
from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

__all__ = ["RECORD_FORMAT", "EvaluationSummary", "MetricSummary", "SliceSummary", "SummaryError", "clean_number"]

# The version of what the schemaless JSON columns of the results database hold (the summary here,
# instance metrics and details, hardware, library versions). Bump it when their content changes.
# 1: first format. 2: instance_results.details (task-defined plot scalars; absent in format 1 rows).
RECORD_FORMAT = 2

_TOLERANT = "tolerant"


class SummaryError(ValueError):
    """A summary that cannot be stored; the message names the field."""


def clean_number(value: Any) -> float | None:
    """A finite float, or None for anything missing, non-numeric, NaN or infinite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _tolerant(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(_TOLERANT))


def _number(value: Any, info: ValidationInfo) -> float | None:
    if _tolerant(info):
        return clean_number(value)
    # None, not NaN, marks "undefined": PostgreSQL's JSON rejects NaN, and a string is a bug.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a finite number or None, got {value!r}")
    return float(value)


def _count(value: Any, info: ValidationInfo) -> int | None:
    if _tolerant(info):
        f = clean_number(value)
        return int(f) if f is not None and f.is_integer() and f >= 0 else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count (an integer >= 0), got {value!r}")
    return value


Number = Annotated[float | None, BeforeValidator(_number)]
Count = Annotated[int | None, BeforeValidator(_count)]


def _known_keys(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """Strict: unknown keys are an error (the writer and this model must agree). Tolerant: a
    non-object reads as empty and unknown keys are dropped (a newer evaluator's additions)."""
    if not _tolerant(info):
        return value
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k in model.model_fields}


class MetricSummary(BaseModel):
    """One metric over the ranked instances, with its 95% bootstrap interval; ``nominal``,
    ``binom_p`` and ``below_nominal`` only for a metric with a nominal rate (a coverage)."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Number
    ci_low: Number = None
    ci_high: Number = None
    n: Count = None                     # instances it applies to (absent in some format-1 rows)
    nominal: Number = None
    binom_p: Number = None
    below_nominal: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, value: Any, info: ValidationInfo) -> Any:
        if _tolerant(info):
            # A bare number where an entry belongs: its value, with no interval.
            if not isinstance(value, dict):
                return {"value": value}
            value = {**value, "value": value.get("value")}
            if not isinstance(value.get("below_nominal"), (bool, type(None))):
                value["below_nominal"] = None
        return _known_keys(cls, value, info)


class SliceSummary(BaseModel):
    """One group (or breakdown slice): its instance count and each metric's aggregate there,
    stored flat as ``{"n": 5, metric: value, ...}``."""
    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Number] = Field(init=False)  # type: ignore[assignment]

    n: Count = None

    @property
    def values(self) -> dict[str, float | None]:
        """``{metric: aggregate}`` over the slice's instances."""
        return dict(self.__pydantic_extra__ or {})

    def value(self, metric: str) -> float | None:
        return self.values.get(metric)


class EvaluationSummary(BaseModel):
    """What ``benchmark.stats.aggregate`` returns and ``Evaluation.metrics`` holds.

    ``record_format`` is the row's format (the ``evaluations.record_format`` column): it travels
    with the summary but is not part of the stored JSON."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    record_format: int = Field(default=RECORD_FORMAT, exclude=True)
    n_instances: Count = None
    n_unranked: Count = None            # instances of unranked (sanity) groups; absent when none
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    groups: dict[str, SliceSummary] = Field(default_factory=dict)
    breakdowns: dict[str, dict[str, SliceSummary]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, value: Any, info: ValidationInfo) -> Any:
        if not _tolerant(info):
            return value
        value = _known_keys(cls, value, info)

        def objects(raw: Any) -> dict[str, Any]:
            return {str(k): v for k, v in raw.items() if isinstance(v, dict)} if isinstance(raw, dict) else {}
        metrics = value.get("metrics")
        value["metrics"] = {str(k): v for k, v in metrics.items()} if isinstance(metrics, dict) else {}
        value["groups"] = objects(value.get("groups"))
        value["breakdowns"] = {k: objects(v) for k, v in objects(value.get("breakdowns")).items()}
        return value

    @property
    def newer_format(self) -> bool:
        """Written by a newer evaluator than this one: what it added is not shown."""
        return self.record_format > RECORD_FORMAT

    @property
    def n_ranked(self) -> int:
        """Instances that count towards the ranking (the unranked groups' left out)."""
        return (self.n_instances or 0) - (self.n_unranked or 0)

    @classmethod
    def for_storage(cls, summary: dict[str, Any]) -> EvaluationSummary:
        """Validate a freshly computed summary (``aggregate``'s output) before it is stored."""
        try:
            return cls.model_validate(summary)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(summary)'}: {e['msg']}" for e in exc.errors())
            raise SummaryError(f"evaluation summary not storable: {problems}") from None

    @classmethod
    def from_stored(cls, raw: Any, record_format: int | None) -> EvaluationSummary:
        """Read a stored summary (of any format, any shape) as well as it can be read."""
        return cls.model_validate(raw, context={_TOLERANT: True}).model_copy(
            update={"record_format": record_format or 1})

    def to_stored(self) -> dict[str, Any]:
        """The JSON object stored in ``Evaluation.metrics``: the keys that were given, in order."""
        return self.model_dump(mode="json", exclude_unset=True)

    def metric_block(self) -> dict[str, dict[str, float | None]]:
        """``{metric: {"value", "ci_low", "ci_high"}}``: what pages and the API show per metric."""
        return {name: {"value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high} for name, m in self.metrics.items()}

    def group_block(self) -> dict[str, dict[str, Any]]:
        """``{group: {"n": int, metric: value, ...}}``."""
        return {g: _slice_dict(s) for g, s in self.groups.items()}

    def breakdown_blocks(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{breakdown: {slice: {"n": int, metric: value, ...}}}``; empty for summaries stored
        before breakdowns existed."""
        return {b: {name: _slice_dict(s) for name, s in slices.items()} for b, slices in self.breakdowns.items()}


def _slice_dict(s: SliceSummary) -> dict[str, Any]:
    return {"n": s.n, **s.values}
