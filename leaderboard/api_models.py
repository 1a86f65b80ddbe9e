"""The JSON bodies of /api/v1, as pydantic models: the views build them and serve their
``model_dump(mode="json")``, and the OpenAPI document (:mod:`leaderboard.openapi`) is generated
from them, so the API and its description cannot drift apart.

Every model forbids extra keys, so a view that passes a key its model does not declare fails
instead of serving it. Numbers that can be NaN or infinite in the store are :data:`Number`: served
as null (JSON has neither), as the API always has. Free-form blobs stored as JSON (submission.yaml,
hardware, per-instance details) are ``dict[str, Any]``; pydantic serves their NaN/inf as null too.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from benchmark.metadata import PlotSpec

__all__ = [
    "MODELS",
    "BoardRow",
    "Comparison",
    "ErrorBody",
    "EvaluationDetail",
    "Jobs",
    "Leaderboard",
    "Number",
    "Overall",
    "PageInfo",
    "PlotData",
    "PlotDeclaration",
    "PlotLinks",
    "RankIntervalMethod",
    "SkillMethod",
    "SkilledRow",
    "SubmissionDetail",
    "TaskInfo",
    "TaskList",
]


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


Number = Annotated[float | None, AfterValidator(_finite)]
"""A float served as null when missing, NaN or infinite."""

Slice = dict[str, int | Number]
"""A group or breakdown slice, flat: ``{"n": instances, metric: aggregate, ...}``."""


class _Body(BaseModel):
    # json_schema_serialization_defaults_required: the document marks every key a response always
    # carries as required, so the contract test catches a key a view stops sending.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


# --- shared parts -------------------------------------------------------------------------------
class ErrorBody(_Body):
    """Every error of the API (4xx and 5xx)."""
    error: str = Field(description="the HTTP status's name")
    message: str = Field(description="what was wrong, naming the parameter or the unknown name")
    status: int


class PageInfo(_Body):
    """Where this answer sits in the whole list (the ``Link`` header carries the same URLs)."""
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="URL of the next page; null on the last")
    previous: str | None = Field(description="URL of the previous page; null on the first")


class MetricValue(_Body):
    """A metric's aggregate over the ranked instances with its 95% bootstrap interval."""
    value: Number
    ci_low: Number
    ci_high: Number


# --- tasks --------------------------------------------------------------------------------------
class TaskMetric(_Body):
    name: str
    description: str
    higher_is_better: bool
    aggregation: Literal["mean", "median", "auroc"]
    best: Number = Field(description="the value a perfect answer reaches")
    worst: Number = Field(description="the value a failed instance is given")


class TaskDataset(_Body):
    repo_id: str
    config: str
    revision: str


class TaskInfo(_Body):
    """A registered task's metadata."""
    name: str
    version: int
    description: str
    headline: str = Field(description="the metric the leaderboard ranks by")
    higher_is_better: bool = Field(description="the headline metric's declared direction")
    metrics: list[TaskMetric]
    groups: list[str]
    dataset: TaskDataset
    plots: list[PlotDeclaration]


class TaskList(_Body):
    tasks: list[TaskInfo]


class PlotDeclaration(PlotSpec):
    """A plot as the task declares it (:class:`benchmark.metadata.PlotSpec`)."""
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    @classmethod
    def of(cls, spec: PlotSpec, **extra: Any) -> Self:
        return cls.model_validate({**spec.model_dump(), **extra})


class PlotLink(PlotDeclaration):
    """A declared plot and the URL of its data."""
    url: str


class PlotLinks(_Body):
    task: str
    plots: list[PlotLink]


# --- leaderboard --------------------------------------------------------------------------------
class RankInterval(_Body):
    low: int
    high: int
    label: str
    tied_with_previous: bool


class RowSkill(_Body):
    """A row's skill against the board's best floor; ``gain`` is the paired headline difference to
    it, oriented so that positive is better."""
    floor: str
    n: int
    skill: Number
    ci_low: Number
    ci_high: Number
    beats_floor: bool
    gain: Number
    gain_ci_low: Number
    gain_ci_high: Number


class BoardRow(_Body):
    """One submission's newest finished evaluation on a board."""
    rank: int | None = Field(description="null for rows not ranked (no headline, floors, in-sample, stale)")
    submission: str
    baseline: bool
    floor: bool = Field(description="a no-skill reference: shown, never ranked")
    evaluation_id: int
    headline_metric: str
    headline: Number
    ci_low: Number
    ci_high: Number
    metrics: dict[str, MetricValue]
    groups: dict[str, Slice]
    n_failed: int
    n_instances: int
    runtime_s: Number
    status: str
    task_version: int
    dataset_revision: str
    finished_at: str | None = Field(description="ISO 8601")
    sandbox: str = Field(description="the sandbox backend the evaluation ran in")
    device: str
    rank_interval: RankInterval | None = Field(description="the row's 95% rank interval; current ranked rows only")


class SkilledRow(BoardRow):
    """A row that has a skill: the current rows and the in-sample ones."""
    skill: RowSkill | None = Field(description="null without a floor on the same instances")


class RankIntervalMethod(_Body):
    """How the rank intervals are computed."""
    method: str
    resamples: int
    seed: int
    level: float
    tied_with_previous: str


class SkillMethod(_Body):
    """How skill is computed, and the floor it is measured against."""
    method: str
    resamples: int
    seed: int
    level: float
    floor: str | None = Field(description="the board's best floor; null when no floor is evaluated")
    floor_evaluation_id: int | None


class StaleSection(_Body):
    """Rows scored on an older task version: shown apart, never ranked."""
    task_version: int
    note: str
    rows: list[BoardRow]


class Leaderboard(_Body):
    """A task's leaderboard on a split. ``rows`` is a page of the current-version rows; the other
    sections are always whole."""
    task: str
    task_version: int
    split: str
    headline: str
    higher_is_better: bool
    rank_intervals: RankIntervalMethod
    skill: SkillMethod
    detectable_difference: Number = Field(description="the smallest headline difference this split usually "
                                                      "separates at 95%")
    unranked_groups: list[str]
    page: PageInfo
    rows: list[SkilledRow]
    floors: list[BoardRow] = Field(description="no-skill references, best first; never ranked")
    in_sample: list[SkilledRow] = Field(description="methods fitted on this split's answers; never ranked on it")
    stale: list[StaleSection]


# --- plots --------------------------------------------------------------------------------------
class PlotPoint(_Body):
    instance_id: str
    group: str
    x: float
    y: float


class PlotSeries(_Body):
    submission: str
    evaluation_id: int
    baseline: bool
    rank: int | None
    skipped: int = Field(description="instance results without a plottable value on an axis")
    points: list[PlotPoint]


class PlotData(_Body):
    """One declared plot's points: a series per submission, a point per instance result."""
    task: str
    task_version: int
    split: str
    plot: PlotDeclaration
    summary: str
    n_points: int
    n_skipped: int
    series: list[PlotSeries]


# --- evaluations and submissions ----------------------------------------------------------------
class Provenance(_Body):
    code_sha256: str
    git_commit: str | None
    dataset_revision: str
    evaluator_version: str
    sandbox: str
    sandbox_info: dict[str, Any]
    device: str
    hardware: dict[str, Any]
    library_versions: dict[str, Any]
    started_at: str | None = Field(description="ISO 8601")
    finished_at: str | None = Field(description="ISO 8601")
    record_format: int


class InstanceResult(_Body):
    instance_id: str
    group: str
    status: str
    metrics: dict[str, Any]
    details: dict[str, Any] = Field(description="the task's per-instance plot values (Task.instance_details)")
    runtime_s: Number
    error: str | None


class EvaluationDetail(_Body):
    """One evaluation with provenance and a page of its instance results."""
    id: int
    submission: str
    baseline: bool
    task: str
    task_version: int
    split: str
    current_task_version: int | None = Field(description="null for a task no longer registered")
    stale: bool = Field(description="scored on an older version of the task")
    status: str
    note: str | None
    headline_metric: str
    headline: Number
    ci_low: Number
    ci_high: Number
    metrics: dict[str, MetricValue]
    groups: dict[str, Slice]
    breakdowns: dict[str, dict[str, Slice]] = Field(
        description="per breakdown the task declares (TaskMetadata.breakdowns): slice -> n and each metric's "
                    "aggregate")
    n_instances: int
    n_failed: int
    runtime_s: Number
    provenance: Provenance
    reproduce: str = Field(description="the command that reproduces this evaluation")
    instances_withheld: bool = Field(description="true on a hidden split (test): its per-instance results are not "
                                                 "published, as they would give its answers away")
    page: PageInfo
    instances: list[InstanceResult]


class SubmissionEvaluation(_Body):
    evaluation_id: int
    task: str
    task_version: int
    split: str
    status: str
    finished: bool
    headline_metric: str
    headline: Number
    ci_low: Number
    ci_high: Number
    n_failed: int
    n_instances: int
    code_sha256: str
    finished_at: str | None = Field(description="ISO 8601")


class SubmissionDetail(_Body):
    """A submission's newest code version and a page of its evaluations, newest first."""
    name: str
    metadata: dict[str, Any] = Field(description="its submission.yaml")
    baseline: bool
    code_sha256: str
    git_commit: str | None
    page: PageInfo
    evaluations: list[SubmissionEvaluation]


# --- compare ------------------------------------------------------------------------------------
class CompareSide(_Body):
    evaluation_id: int
    submission: str
    task_version: int
    split: str
    status: str
    headline: Number


class BootstrapMethod(_Body):
    resamples: int
    seed: int
    level: float
    paired: bool
    stratified_by: str
    statistic: str


class GroupDiff(_Body):
    n: int
    value_a: Number
    value_b: Number
    diff: Number


class MetricDiff(_Body):
    n: int
    aggregation: str
    value_a: Number
    value_b: Number
    diff: Number
    ci_low: Number
    ci_high: Number
    significant: bool
    higher_is_better: bool | None = Field(description="null for a metric the task does not declare")
    verdict: str


class CompareInstance(_Body):
    instance_id: str
    group: str
    status_a: str
    status_b: str
    a: Number = Field(description="A's headline value")
    b: Number
    diff: Number
    metrics_a: dict[str, Number]
    metrics_b: dict[str, Number]


class Comparison(_Body):
    """Two evaluations of the same task: per-metric paired differences (A − B) over the shared
    instances with 95% paired-bootstrap intervals, per-group differences and per-instance values."""
    task: str
    a: CompareSide
    b: CompareSide
    headline: str
    n_shared: int
    only_a: int
    only_b: int
    bootstrap: BootstrapMethod
    metrics: dict[str, MetricDiff]
    groups: dict[str, dict[str, GroupDiff]] = Field(description="group -> metric -> difference (no interval)")
    instances_withheld: bool = Field(description="true on a hidden split (test): the per-instance values are not "
                                                 "published")
    instances: list[CompareInstance]


# --- overall ------------------------------------------------------------------------------------
class OverallRow(_Body):
    position: int
    submission: str
    baseline: bool
    n_tasks: int = Field(description="tasks with a skill")
    n_total_tasks: int
    mean_skill: float
    mean_rank: float
    skills: dict[str, float] = Field(description="task -> skill against its best floor, clipped to [-1, 1]")
    ranks: dict[str, int]
    evaluation_ids: dict[str, int]


class Overall(_Body):
    """The overall ranking across tasks (the rule is in ``rule``); ``rows`` is one page of it."""
    split: str
    tasks: list[str]
    rule: str
    rows: list[OverallRow]
    page: PageInfo


# --- jobs ---------------------------------------------------------------------------------------
class JobInfo(_Body):
    id: int
    state: Literal["queued", "running", "done", "failed"]
    position: int | None = Field(description="place in its queue (1 = next); queued jobs only")
    reason: str | None = Field(description="why it failed or was retried")
    submission: str
    code_sha256: str
    task: str
    split: str
    sandbox: str
    device: str
    queue: str
    attempts: int
    worker: str | None
    evaluation_id: int | None
    enqueued_at: str | None = Field(description="ISO 8601")
    started_at: str | None = Field(description="ISO 8601")
    finished_at: str | None = Field(description="ISO 8601")


class Jobs(_Body):
    """Queue jobs, newest first, and how many are in each state."""
    counts: dict[str, int]
    jobs: list[JobInfo]


MODELS: tuple[type[BaseModel], ...] = (ErrorBody, TaskList, TaskInfo, PlotLinks, Leaderboard, PlotData,
                                       EvaluationDetail, SubmissionDetail, Comparison, Overall, Jobs)
"""The top-level bodies; the document's components are these and the models they use."""
