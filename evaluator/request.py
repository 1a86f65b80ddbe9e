"""An evaluation request, and the one function that turns it into evaluations.

``phasebench evaluate`` builds a request from its options and runs it here; ``phasebench enqueue``
builds the same request from the same options, stores one per job (``Job.options``) and a worker's
:func:`evaluator.queue.execute.execute_job` runs the stored request here. Whatever defines an
evaluation is a field of :class:`EvaluationRequest`, so the two paths cannot drift apart.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.dataset import SPLITS, DataError, open_split
from benchmark.metadata import ResourceLimits
from benchmark.registry import UnknownNameError
from benchmark.task import get_task

from .hub import parse_data_repo, resolve_data_repo
from .runner import EvaluationRun, InstanceSlots, Outcome, start_evaluation
from .sandbox import SANDBOXES, SandboxError, get_sandbox
from .store import ResultsStore
from .submission import Submission, SubmissionError, load_submission

__all__ = ["REQUEST_FORMAT", "EvaluationRequest", "LimitOverrides", "Evaluated", "NotEvaluated", "MachineUnfit",
           "evaluate_request", "load_requested", "first_error"]

log = logging.getLogger(__name__)

#: Version of the stored request (a queued job's ``options``). Bump it when a field changes meaning
#: or a new field has no default; readers refuse a newer one rather than misread it.
REQUEST_FORMAT = 1


class LimitOverrides(BaseModel):
    """Per-instance limits that replace the task's own (None: the task's)."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    wall_time_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=1)
    output_mb: float | None = Field(default=None, gt=0)

    def apply(self, limits: ResourceLimits) -> ResourceLimits:
        """The task's limits with these in their place; a wall time given replaces the task's
        per-instance ones (``wall_time_by``) as well: the operator's one limit holds for every instance."""
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        if "wall_time_s" in given:
            given["wall_time_by"] = None
        return limits.model_validate({**limits.model_dump(), **given})


class EvaluationRequest(BaseModel):
    """Everything that defines one request: which code, on which tasks and data, how it is run."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = REQUEST_FORMAT
    submissions: list[Path] = Field(min_length=1)
    #: Only these tasks; empty: every task each submission answers.
    tasks: list[str] = []
    split: str = "dev"
    sandbox: str = "bwrap"
    device: Literal["cpu", "cuda"] = "cpu"
    #: Evaluate again even when a stored result has the same reuse key (see ResultsStore.find_finished).
    force: bool = False
    data_dir: Path | None = None
    #: A Hub dataset at a pinned commit, org/name@<commit>, fetched (once) where the request runs.
    data_repo: str | None = None
    private_dir: Path | None = None
    limits: LimitOverrides = LimitOverrides()
    #: Instances evaluated at once, each worker with an equal share of the CPUs.
    workers: int = Field(default=1, ge=1)
    #: The code the (one) submission must have: a queued job evaluates the code that was enqueued.
    code_sha256: str | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value > REQUEST_FORMAT:
            raise ValueError(f"request format {value} is newer than this evaluator reads ({REQUEST_FORMAT}); "
                             "upgrade the evaluator")
        return value

    @field_validator("split")
    @classmethod
    def _known_split(cls, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
        return split

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, names: list[str]) -> list[str]:
        for name in names:
            try:
                get_task(name)
            except UnknownNameError as exc:
                raise ValueError(str(exc)) from None   # "did you mean ...?"
        return names

    @field_validator("sandbox")
    @classmethod
    def _known_sandbox(cls, name: str) -> str:
        try:
            SANDBOXES.get(name)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None
        return name

    @field_validator("data_repo")
    @classmethod
    def _pinned(cls, spec: str | None) -> str | None:
        if spec is not None:
            parse_data_repo(spec)
        return spec

    @model_validator(mode="after")
    def _consistent(self) -> EvaluationRequest:
        if self.data_dir is not None and self.data_repo is not None:
            raise ValueError("give --data-dir or --data-repo, not both")
        if self.device == "cuda" and self.workers > 1:
            # Workers would share the one GPU's memory, which no sandbox limits per worker.
            raise ValueError("--workers above 1 is for --device cpu: workers on one GPU would share its memory "
                             "with no per-worker limit")
        if self.code_sha256 is not None and len(self.submissions) != 1:
            raise ValueError("code_sha256 pins the code of one submission; this request names "
                             f"{len(self.submissions)}")
        return self

    def for_job(self, submission: Submission, task: str) -> EvaluationRequest:
        """The request of one queued job: this submission (its code pinned) on this task, with the
        paths absolute, as the workers see them on a shared filesystem."""
        return self.model_copy(update={
            "submissions": [submission.folder.resolve()], "tasks": [task], "code_sha256": submission.code_sha256,
            "data_dir": self.data_dir.resolve() if self.data_dir else None,
            "private_dir": self.private_dir.resolve() if self.private_dir else None})

    def to_stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def first_error(exc: ValidationError) -> tuple[str, str]:
    """(the field, as a dotted path, or "" for the request as a whole; the message) of an invalid request."""
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]), err["msg"].removeprefix("Value error, ")


@dataclass(frozen=True)
class Evaluated:
    outcome: Outcome


@dataclass(frozen=True)
class NotEvaluated:
    """A submission, or one of its tasks, that the request names and that was not evaluated.

    ``kind``: ``invalid`` (the folder is not a valid submission, or its code is not the pinned
    code), ``no-task`` (it answers none of the requested tasks: skipped, not a failure), ``image``
    (its own sandbox image could not be built), ``data`` (unknown task, missing or corrupt data)
    or ``infra`` (the sandbox failed: not the method's fault; ``error`` is the exception)."""
    name: str
    task: str | None
    kind: Literal["invalid", "no-task", "image", "data", "infra"]
    reason: str
    problems: tuple[str, ...] = ()
    error: BaseException | None = field(default=None, compare=False)

    @property
    def failed(self) -> bool:
        return self.kind != "no-task"


class MachineUnfit(RuntimeError):
    """This machine cannot run the request at all (its sandbox is unavailable): nothing about the
    submission; elsewhere, or later, the same request may run."""


def load_requested(request: EvaluationRequest) -> Iterator[tuple[Submission, list[str]] | NotEvaluated]:
    """Each folder of the request loaded, with the requested tasks it answers (in its own order)."""
    for folder in request.submissions:
        try:
            sub = load_submission(folder)
        except SubmissionError as exc:
            yield NotEvaluated(str(folder), None, "invalid", "the submission is invalid", tuple(exc.problems))
            continue
        if request.code_sha256 is not None and sub.code_sha256 != request.code_sha256:
            yield NotEvaluated(sub.name, None, "invalid",
                               f"{folder}: the code changed since it was enqueued (code sha256 "
                               f"{request.code_sha256[:12]} then, {sub.code_sha256[:12]} now); enqueue it again")
            continue
        wanted = [t for t in sub.spec.tasks if not request.tasks or t in request.tasks]
        if not wanted:
            yield NotEvaluated(sub.name, None, "no-task", f"answers none of the tasks {', '.join(request.tasks)}")
            continue
        yield sub, wanted


def evaluate_request(request: EvaluationRequest, store: ResultsStore, *,
                     warn: Callable[[str], Any] = log.warning, info: Callable[[str], Any] = log.info,
                     progress: Callable[[int, str], Any] | None = None,
                     on_start: Callable[[int], Any] | None = None,
                     overlap: bool = True) -> Generator[Evaluated | NotEvaluated, None, None]:
    """Evaluate what ``request`` names, one (submission, task) at a time, yielding each result.

    Raises :class:`MachineUnfit` before any evaluation when this machine cannot run it; a problem
    with one submission or task is yielded as :class:`NotEvaluated` and the rest go on. ``warn`` is
    told what the person running it must know (a sandbox that does not isolate), ``info`` what
    happens on the way (an image build).

    The ``workers`` slots are shared (:class:`evaluator.runner.InstanceSlots`): with ``overlap``, the
    next evaluation starts once the current one has started its last instance, and takes the slots
    that one no longer needs. Results, bars and reasons still come in the request's order; any other
    exception stops the request, and every evaluation in flight is marked and its workers killed."""
    data_dir = resolve_data_repo(request.data_repo) if request.data_repo else request.data_dir
    sandbox = get_sandbox(request.sandbox)
    ok, why = sandbox.available()
    if not ok:
        raise MachineUnfit(f"sandbox {request.sandbox!r} is unavailable: {why}")
    if not sandbox.isolated and sandbox.warning:
        warn(f"WARNING: {sandbox.warning}")

    def steps() -> Iterator[Evaluated | NotEvaluated | EvaluationRun]:
        for item in load_requested(request):
            if isinstance(item, NotEvaluated):
                yield item
                continue
            sub, tasks = item
            try:
                # The container sandbox runs a submission that declares extra requirements on its own
                # image (evaluator image + those requirements), built here, before any worker runs.
                sub_sandbox = sandbox.for_submission(sub, log=info)
            except SandboxError as exc:
                yield NotEvaluated(sub.name, None, "image", f"its image could not be built: {exc}", error=exc)
                continue
            for task_name in tasks:
                try:
                    task = get_task(task_name)
                    split = open_split(task.name, request.split, data_dir, request.private_dir)
                    started = start_evaluation(
                        sub, task, split, sub_sandbox, store, device=request.device, force=request.force,
                        limits=request.limits.apply(task.metadata.limits), workers=request.workers,
                        progress=progress, on_start=on_start)
                except (DataError, UnknownNameError) as exc:
                    yield NotEvaluated(sub.name, task_name, "data", str(exc), error=exc)
                except SandboxError as exc:
                    yield NotEvaluated(sub.name, task_name, "infra", str(exc), error=exc)
                else:
                    yield Evaluated(started) if isinstance(started, Outcome) else started

    planned = steps()
    # Prepared, not yet yielded, in order; an exception is raised on its turn, and nothing after it is prepared.
    ahead: deque[Evaluated | NotEvaluated | EvaluationRun | Exception] = deque()
    exhausted = False

    def prepare() -> bool:
        nonlocal exhausted
        if exhausted:
            return False
        try:
            ahead.append(next(planned))
        except StopIteration:
            exhausted = True
            return False
        except Exception as exc:  # noqa: BLE001 - raised on its turn, after the results before it
            ahead.append(exc)
            exhausted = True
        return True

    def refill() -> EvaluationRun | None:
        while prepare():
            if isinstance(ahead[-1], EvaluationRun):
                return ahead[-1]
        return None

    with InstanceSlots(request.workers) as slots:
        while ahead or prepare():
            step = ahead.popleft()
            if isinstance(step, Exception):
                raise step
            if not isinstance(step, EvaluationRun):
                yield step
                continue
            try:
                outcome = slots.finish(step, refill if overlap else None)
            except (DataError, UnknownNameError) as exc:
                yield NotEvaluated(step.submission.name, step.task.name, "data", str(exc), error=exc)
            except SandboxError as exc:
                yield NotEvaluated(step.submission.name, step.task.name, "infra", str(exc), error=exc)
            else:
                yield Evaluated(outcome)
