"""Validated task metadata: every task declares what it is, what it measures and how, up front.

Unknown keys are rejected so that a typo in a declaration fails at import, not in a result.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Metric", "ResourceLimits", "FieldSpec", "DatasetRef", "PlotSpec", "Breakdown", "TaskMetadata", "METRIC_PREFIX"]

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


class ResourceLimits(_Strict):
    wall_time_s: float = Field(gt=0)
    memory_mb: int = Field(gt=0)
    output_mb: float = Field(gt=0)


FieldKind = Literal["array", "int", "float", "str", "bool"]


class FieldSpec(_Strict):
    kind: FieldKind
    description: str
    dtype: str | None = None
    shape: list[str] | None = None
    public_because: str | None = Field(
        default=None, description="for an input field: why a method may see it (what the task gives away by design, and "
        "why it does not identify a hidden parameter); required on every input field")


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
    answer_schema: dict[str, FieldSpec]
    metrics: list[Metric]
    headline: str
    groups: list[str]
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
        undeclared = [k for k, f in self.input_schema.items() if not f.public_because]
        if undeclared:
            raise ValueError(f"input fields {undeclared} do not say why they are public (public_because)")
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
