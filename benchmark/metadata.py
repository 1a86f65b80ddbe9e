"""Validated task metadata: every task declares what it is, what it measures and how, up front.

Unknown keys are rejected so that a typo in a declaration fails at import, not in a result.
"""
from __future__ import annotations

import math
import re
from typing import Any, Literal, Mapping, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Metric", "ResourceLimits", "WallTimeBy", "FieldSpec", "AnswerField", "DatasetRef", "PlotSpec", "Breakdown", "TaskMetadata",
           "METRIC_PREFIX"]

#: A plot axis that names a per-instance metric instead of a key of the instance details.
METRIC_PREFIX = "metric:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_@.]*$")
    description: str
    higher_is_better: bool
    aggregation: Literal["mean", "median", "auroc"] = "mean"
    best: float = Field(description="the value a perfect answer reaches")
    worst: float = Field(description="the value a failed instance is given")
    nominal_rate: float | None = Field(
        default=None, gt=0, lt=1, description="for a 0/1 metric (e.g. a bound's coverage): the rate it should reach; the"
        " aggregate flags a rate significantly below it (one-sided binomial test)")
    label: str | None = Field(
        default=None, description="for aggregation 'auroc': the key of the instance details holding the 0/1 class; the"
        " metric's per-instance value is then the method's score for class 1, and the aggregate is the AUROC")

    @model_validator(mode="after")
    def _auroc_has_label(self) -> "Metric":
        if (self.aggregation == "auroc") != (self.label is not None):
            raise ValueError(f"metric {self.name}: aggregation 'auroc' needs a label (the details key of the"
                             " 0/1 class), and only it takes one")
        return self

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


class WallTimeBy(_Strict):
    """Per-instance wall-time limits keyed by the value of one public string field of the instance
    (grokking-onset's ``architecture``: each architecture's limit a share of what training one of its
    runs costs). An instance whose value is not listed gets the limits' ``wall_time_s``."""
    field: str = Field(min_length=1, description="a public field of kind 'str' of the task's input schema")
    seconds: dict[str, float] = Field(min_length=1, description="the field's value -> wall-time limit (s)")

    @model_validator(mode="after")
    def _positive(self) -> "WallTimeBy":
        bad = {k: v for k, v in self.seconds.items() if not (v > 0 and math.isfinite(v))}
        if bad:
            raise ValueError(f"wall-time limits by {self.field} must be finite and > 0, got {bad}")
        return self


class ResourceLimits(_Strict):
    wall_time_s: float = Field(gt=0, description="the wall-time limit (s); with wall_time_by, that of an instance "
                               "whose field value it does not list")
    memory_mb: int = Field(gt=0)
    output_mb: float = Field(gt=0)
    wall_time_by: WallTimeBy | None = Field(default=None, description=(
        "per-instance wall-time limits by the value of a public str field (checked against the input schema)"))

    def wall_time_for(self, public: Mapping[str, Any]) -> float:
        """The wall-time limit of an instance with these public fields."""
        by = self.wall_time_by
        if by is None:
            return self.wall_time_s
        return by.seconds.get(str(public.get(by.field)), self.wall_time_s)

    def for_instance(self, public: Mapping[str, Any]) -> "ResourceLimits":
        """These limits with one wall time, the instance's: what a sandboxed worker runs under."""
        if self.wall_time_by is None:
            return self
        return self.model_copy(update={"wall_time_s": self.wall_time_for(public), "wall_time_by": None})


FieldKind = Literal["array", "int", "float", "str", "bool"]


class FieldSpec(_Strict):
    kind: FieldKind
    description: str
    dtype: str | None = None
    shape: list[str] | None = None
    public_because: str | None = Field(
        default=None, description="for an input field: why a method may see it (what the task gives away by design, and "
        "why it does not identify a hidden parameter); required on every input field")


#: One dimension of an answer array: a fixed size ("3"), the value of an integer public field of the
#: instance ("dim"), or a free size bounded by one ("m<=n_features": at most n_features rows).
_DIM = re.compile(r"^(?:(?P<size>[0-9]+)|(?P<field>[a-z_][a-z0-9_]*)|(?P<free>[a-z])<=(?P<bound>[a-z_][a-z0-9_]*))$")


class Dim(NamedTuple):
    """One parsed dimension: exactly one of ``size``, ``field`` and ``bound`` is set (``free`` names the
    free size ``bound`` limits)."""
    size: int | None
    field: str | None
    free: str | None
    bound: str | None


def parse_dim(dim: str) -> Dim:
    """ValueError for a dimension that is none of the three forms."""
    m = _DIM.match(dim)
    if m is None:
        raise ValueError(f"shape dimension {dim!r} is not a size, a public field or '<letter><=<public field>'")
    return Dim(int(m["size"]) if m["size"] else None, m["field"], m["free"], m["bound"])


class AnswerField(_Strict):
    """One field of a task's answer, as the one answer validator (benchmark/answers.py) checks it.

    Every answer field holds real numbers (bool, integer or floating point; the validator hands the
    scorer float64): the answer file the sandboxed worker writes carries nothing else."""
    kind: Literal["scalar", "array"]
    description: str
    dtype: Literal["real"] = Field(default="real", description="bool, integer or floating point; cast to float64")
    shape: list[str] | None = Field(
        default=None, description="for an array, one entry per dimension: a size ('3'), an integer public field of"
        " the instance ('dim'), or a free size at most one ('m<=n_features')")
    finite: bool = Field(default=True, description="whether inf is refused (NaN always is)")
    required: bool = Field(default=True, description="whether an answer must give the field")
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "AnswerField":
        if self.kind == "array" and not self.shape:
            raise ValueError("an answer field of kind 'array' needs a shape (one entry per dimension)")
        if self.kind == "scalar" and self.shape is not None:
            raise ValueError("an answer field of kind 'scalar' takes no shape")
        for dim in self.shape or []:
            parse_dim(dim)
        if (self.gt is not None and self.ge is not None) or (self.lt is not None and self.le is not None):
            raise ValueError("give at most one lower bound (gt or ge) and one upper bound (lt or le)")
        low, high = self.lower, self.upper
        if low is not None and high is not None and low[0] > high[0]:
            raise ValueError(f"bounds {self.bounds_text()} admit no value")
        return self

    @property
    def lower(self) -> tuple[float, bool] | None:
        """(bound, strict) or None."""
        return (self.gt, True) if self.gt is not None else (self.ge, False) if self.ge is not None else None

    @property
    def upper(self) -> tuple[float, bool] | None:
        return (self.lt, True) if self.lt is not None else (self.le, False) if self.le is not None else None

    def bounds_text(self) -> str:
        """'in (0, 1]', '> 0', '<= 1' or '' (no bounds)."""
        low, high = self.lower, self.upper
        if low and high:
            return f"in {'(' if low[1] else '['}{low[0]:g}, {high[0]:g}{')' if high[1] else ']'}"
        if low:
            return f"{'>' if low[1] else '>='} {low[0]:g}"
        if high:
            return f"{'<' if high[1] else '<='} {high[0]:g}"
        return ""

    def public_fields(self) -> list[str]:
        """The public fields of the instance the shape refers to."""
        out = []
        for dim in self.shape or []:
            parsed = parse_dim(dim)
            out += [f for f in (parsed.field, parsed.bound) if f]
        return out


class DatasetRef(_Strict):
    repo_id: str = Field(description="the Hugging Face dataset repository that publishes the task")
    config: str = Field(description="the dataset config (one per task)")
    revision: str = Field(
        description="pinned revision: a hub commit (40 hex digits) or the sha256 of the dev split's"
        " manifest for the embedded copy ('sha256:<64 hex>')"
    )

    train_revision: str | None = Field(
        default=None, description="the sha256 of the train split's manifest ('sha256:<64 hex>'), for a task with a"
        " train split: pinned like dev's, so that a method fitted on it names the data it saw")

    @model_validator(mode="after")
    def _pinned(self) -> "DatasetRef":
        if not re.fullmatch(r"[0-9a-f]{40}|sha256:[0-9a-f]{64}", self.revision):
            raise ValueError(f"dataset revision {self.revision!r} is not pinned (commit or sha256:...)")
        if self.train_revision is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", self.train_revision):
            raise ValueError(f"train revision {self.train_revision!r} is not pinned (sha256:...)")
        return self

    def pin(self, split: str) -> str | None:
        """The pinned revision of a public split's embedded build (None: the split has no pin)."""
        return {"dev": self.revision, "train": self.train_revision}.get(split)


class PlotSpec(_Strict):
    """A task-specific plot the leaderboard draws from per-instance results, declared as data.

    ``x`` and ``y`` name a key of the details ``Task.instance_details`` returns, or
    ``"metric:<metric name>"`` for one of the task's per-instance metrics.
    """
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="identifier, used in URLs")
    title: str
    kind: Literal["scatter"] = "scatter"
    x: str = Field(min_length=1)
    y: str = Field(min_length=1)
    x_log: bool = False
    y_log: bool = False
    diagonal: bool = Field(default=False, description="draw the line y = x (prediction against truth)")
    x_label: str
    y_label: str
    caption: str = ""

    @property
    def axes(self) -> tuple[str, str]:
        return self.x, self.y

    def metric_axes(self) -> list[str]:
        """The metric names the plot's axes refer to."""
        return [a[len(METRIC_PREFIX):] for a in self.axes if a.startswith(METRIC_PREFIX)]

    def detail_keys(self) -> list[str]:
        """The keys of the instance details the plot's axes read."""
        return [a for a in self.axes if not a.startswith(METRIC_PREFIX)]


class Breakdown(_Strict):
    """A second way to slice an evaluation besides its groups: by the value of one key of the
    instance details (rare-behavior's decade of the true p). Each metric is aggregated within each
    slice by its own declared aggregation, exactly as for groups.
    """
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="identifier, used in URLs and stored JSON")
    key: str = Field(min_length=1, description="the instance-details key whose value names the slice")
    title: str
    caption: str = ""


class TaskMetadata(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    version: int = Field(ge=1, description="bumped whenever data, scoring or limits change")
    description: str
    reference: list[str] = Field(default_factory=list)
    input_schema: dict[str, FieldSpec]
    answer_schema: dict[str, AnswerField] = Field(min_length=1)
    metrics: list[Metric]
    headline: str
    groups: list[str]
    group_label: str = Field(default="group", min_length=1, description=(
        "what one group is, in the words of the task's pages (planted-features: a difficulty tier)"))
    group_public: bool = Field(description="whether a method is told its instance's group; a group that is a hidden "
                               "generation parameter (a difficulty tier) stays in the private index")
    group_because: str = Field(min_length=1, description="why the group is public, or why it is hidden")
    unranked_groups: list[str] = Field(default_factory=list, description=(
        "groups scored and shown as sanity rows but left out of the overall metrics, the ranking and skill "
        "(e.g. instances built from published data, whose answers can be looked up)"))
    unranked_because: str | None = Field(default=None, description="why the unranked groups are left out")
    limits: ResourceLimits
    dataset: DatasetRef
    plots: list[PlotSpec] = Field(default_factory=list)
    breakdowns: list[Breakdown] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "TaskMetadata":
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate metric names in {names}")
        if self.headline not in names:
            raise ValueError(f"headline {self.headline!r} is not one of the metrics {names}")
        if self.dataset.config != self.name:
            raise ValueError(f"dataset config {self.dataset.config!r} must equal the task name")
        plot_names = [p.name for p in self.plots]
        if len(set(plot_names)) != len(plot_names):
            raise ValueError(f"duplicate plot names in {plot_names}")
        unknown = [g for g in self.unranked_groups if g not in self.groups]
        if unknown:
            raise ValueError(f"unranked groups {unknown} are not among the groups {self.groups}")
        if bool(self.unranked_groups) != bool(self.unranked_because):
            raise ValueError("unranked_groups and unranked_because go together: say why the groups are left out")
        by = self.limits.wall_time_by
        if by is not None and (by.field not in self.input_schema or self.input_schema[by.field].kind != "str"):
            raise ValueError(f"limits.wall_time_by.field {by.field!r} is not a public field of kind 'str' of the "
                             "input schema")
        undeclared = [k for k, f in self.input_schema.items() if not f.public_because]
        if undeclared:
            raise ValueError(f"input fields {undeclared} do not say why they are public (public_because)")
        for name, spec in self.answer_schema.items():
            for ref in spec.public_fields():
                if ref not in self.input_schema or self.input_schema[ref].kind != "int":
                    raise ValueError(f"answer field {name}: shape {spec.shape} refers to {ref!r}, which is not an"
                                     " integer field of the input schema")
        breakdown_names = [b.name for b in self.breakdowns]
        if len(set(breakdown_names)) != len(breakdown_names):
            raise ValueError(f"duplicate breakdown names in {breakdown_names}")
        for plot in self.plots:
            for metric in plot.metric_axes():
                if metric not in names:
                    raise ValueError(f"plot {plot.name!r} refers to {METRIC_PREFIX}{metric}, which is not one of"
                                     f" the metrics {names}")
        return self

    def ranked(self, group: str | None) -> bool:
        """Whether an instance of this group counts towards the overall metrics and the ranking."""
        return group not in self.unranked_groups

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"task {self.name} has no metric {name!r}")

    @property
    def headline_metric(self) -> Metric:
        return self.metric(self.headline)

    def plot(self, name: str) -> PlotSpec:
        for p in self.plots:
            if p.name == name:
                return p
        raise KeyError(f"task {self.name} has no plot {name!r}")
