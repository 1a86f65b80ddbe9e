"""The task API every PhaseBench task implements, and the registry of tasks."""
from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, final

import numpy as np

from .answers import AnswerError, check_schema
from .dataset import InstanceRecord, SplitWriter
from .metadata import TaskMetadata
from .oracle import Oracle
from .registry import Registry
from .split_secret import SplitSecret

__all__ = [
    "DEV_SECRET",
    "TASKS",
    "TRAIN_SECRET",
    "AnswerError",
    "GeneratedInstance",
    "InstanceSpec",
    "Task",
    "get_task",
    "register_task",
]

#: The key every dev split is drawn from. Public by design (the dev answers are public); the task
#: name in every derivation keeps the tasks' streams apart.
DEV_SECRET = SplitSecret.public_label("phasebench dev splits, version 2")
#: The key every train split is drawn from: public too (its answers are public, for fitting), and a
#: key of its own, so that no id, seed or configuration of a train split is drawn from dev's streams
#: (or the test split's: HMAC under different keys).
TRAIN_SECRET = SplitSecret.public_label("phasebench train splits, version 1")


@dataclass(frozen=True)
class InstanceSpec:
    """Everything needed to generate one instance. Private on the test split: the configuration and
    the seed are draws from the operator's secret, and the id is opaque."""
    id: str
    group: str
    params: dict[str, Any]
    seed: int
    split: str = ""
    index: int = -1  # position in the drawn order; never public (the split is stored sorted by id)


@dataclass
class GeneratedInstance:
    public_fields: dict[str, Any]          # scalars in the public index, handed to the method
    inputs: dict[str, np.ndarray]          # public arrays handed to the method
    answer: dict[str, np.ndarray]          # the ground truth
    answer_info: dict[str, Any] = field(default_factory=dict)  # generation spec, kept with the answer
    #: Hidden scalars the scorer, the breakdowns and the plots need (tier, density, family...): kept in
    #: the split's private index beside the answers, never in a public field.
    hidden: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    metadata: ClassVar[TaskMetadata]
    #: The dev split's built files are committed to the repository because building them takes
    #: too long for every test run (`phasebench data build` finds them verified). A task that sets
    #: this ties the committed bytes to its code with a cheaper test of its own, and the test suite
    #: does not rebuild its whole dev split.
    dev_split_committed: ClassVar[bool] = False
    #: The sets a split can be built at (``phasebench data build --scale``). "embedded" is the one the
    #: metadata pins, the tests and the demo use; a task may offer larger ones (e.g. "gpu") that are
    #: built where the hardware is and published as new revisions.
    build_scales: ClassVar[tuple[str, ...]] = ("embedded",)
    #: Devices the generator can train or sample on (``phasebench data build --device``).
    build_devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: The splits the task draws. "train" (public answers, for fitting a method's parameters) is a task's
    #: own choice of size: a task without it says so when asked to build one.
    splits: ClassVar[tuple[str, ...]] = ("dev", "test")

    @property
    def name(self) -> str:
        return self.metadata.name

    # --- data ---------------------------------------------------------------------------
    def secret_for(self, split: str, secret: SplitSecret | None = None) -> SplitSecret:
        """The key a split is drawn from: the public dev or train key, or the operator's (required) for test."""
        self.check_split(split)
        if split == "dev":
            return DEV_SECRET
        if split == "train":
            return TRAIN_SECRET
        if secret is None or secret.public:
            raise ValueError(f"{self.name}/{split}: the {split} split is drawn from the operator's secret")
        return secret

    def check_split(self, split: str) -> None:
        """ValueError naming the task and its splits for a split it does not draw."""
        if split not in self.splits:
            raise ValueError(f"{self.name}: no {split} split; it has {', '.join(self.splits)}")

    def draw_configs(self, split: str, rng: np.random.Generator) -> list[tuple[str, dict[str, Any]]]:
        """The (group, parameters) of every instance of a split, drawn from the task's published
        distribution with ``rng`` (a stream of the split's key). No list of test configurations
        exists in the code: the concrete values are draws, secret on the test split."""
        raise NotImplementedError(f"{self.name}: draw_configs or instance_specs must be implemented")

    def instance_specs(self, split: str, secret: SplitSecret | None = None) -> list[InstanceSpec]:
        """The instances of a split, sorted by their opaque ids (so the stored order says nothing)."""
        key = self.secret_for(split, secret)
        configs = self.draw_configs(split, key.rng(self.name, split, "configs"))
        specs = [InstanceSpec(id=key.token(self.name, split, "id", i), group=group, params=params,
                              seed=key.seed(self.name, split, "instance", i), split=split, index=i)
                 for i, (group, params) in enumerate(configs)]
        if len({s.id for s in specs}) != len(specs):  # 64-bit ids: never in practice, but never silently
            raise RuntimeError(f"{self.name}/{split}: two instance ids collide; draw the split again")
        return sorted(specs, key=lambda s: s.id)

    @abstractmethod
    def generate(self, spec: InstanceSpec) -> GeneratedInstance:
        """Generate one instance deterministically from its spec."""

    def build(self, split: str, secret: SplitSecret | None, data_dir: Path, answers_dir: Path,
              progress: Any = None, *, device: str = "cpu", scale: str = "embedded", workers: int = 1) -> str:
        """Generate and write a split; the split's revision. Only the embedded scale on CPU here: a task
        offering more overrides this and widens ``build_scales`` / ``build_devices``.

        ``workers`` > 1 generates that many instances at once in fresh interpreters (each instance
        depends on its spec alone, so the files are the same); they are written here, in order."""
        self.check_build_options(device, scale)
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        writer = SplitWriter(data_dir, self.name, split, answers_dir, group_public=self.metadata.group_public)
        specs = self.instance_specs(split, secret)
        shown = progress(specs) if progress else specs
        if workers == 1 or len(specs) < 2:
            for spec in shown:
                self.write_instance(writer, spec)
            return writer.close()
        # spawn, not fork: the parent may hold torch's and OpenMP's thread pools, which a forked
        # child inherits in a broken state. The children inherit the reference environment.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(specs)), mp_context=context) as pool:
            generated = pool.map(_generate_registered, [self.name] * len(specs), specs)
            # the bar moves when an instance is written, not when it is handed out
            for inst, spec in zip(generated, shown):
                self._add(writer, spec, inst)
        return writer.close()

    def write_instance(self, writer: SplitWriter, spec: InstanceSpec) -> None:
        """Generate one instance and add it to ``writer`` exactly as ``build`` does (so that a sample of a
        pinned split can be rebuilt alone and compared byte for byte)."""
        self._add(writer, spec, self.generate(spec))

    @staticmethod
    def _add(writer: SplitWriter, spec: InstanceSpec, inst: GeneratedInstance) -> None:
        writer.add(spec.id, spec.group, inst.public_fields, inst.inputs, inst.answer,
                   {"params": spec.params, **inst.answer_info}, hidden=inst.hidden)

    def check_build_options(self, device: str, scale: str) -> None:
        """ValueError naming the task and its choices for a scale or device it cannot build at."""
        if scale not in self.build_scales:
            raise ValueError(f"{self.name}: no scale {scale!r} to build; it has {list(self.build_scales)}")
        if device.split(":")[0] not in self.build_devices:
            raise ValueError(f"{self.name}: cannot build on {device!r}; it builds on {list(self.build_devices)}")

    # --- answers and scores -------------------------------------------------------------
    @final
    def validate_answer(self, answer: dict[str, np.ndarray], record: InstanceRecord) -> dict[str, np.ndarray]:
        """The answer as the scorer gets it (float64 arrays, scalars of shape ()), or AnswerError naming
        the instance, the field and the problem: the declared answer schema first (benchmark/answers.py),
        then the task's own checks. Final, so that every task and every caller takes this one path."""
        clean = check_schema(self.metadata.answer_schema, answer, record)
        self.check_answer(clean, record)
        return clean

    def check_answer(self, answer: dict[str, np.ndarray], record: InstanceRecord) -> None:  # noqa: B027 (optional)
        """What the schema cannot say (an upper bound below its estimate, one end of an interval
        without the other): raise AnswerError. ``answer`` has passed the schema. None by default."""

    @abstractmethod
    def score(self, answer: dict[str, np.ndarray], truth: dict[str, np.ndarray],
              record: InstanceRecord) -> dict[str, float]:
        """Per-instance metrics, one value for each declared metric."""

    def oracle(self, record: InstanceRecord, truth: dict[str, np.ndarray]) -> Oracle | None:
        """A model the method may query but not see (black-box tracks), built in the evaluator's
        process from the instance's answers; None when the task has no black-box access."""
        return None

    def instance_details(self, answer: dict[str, np.ndarray] | None, truth: dict[str, np.ndarray],
                         record: InstanceRecord) -> dict[str, float | str | None]:
        """Scalars the leaderboard plots per instance (e.g. predicted and true value, n/d).

        Stored beside the metrics; ``answer`` is None when the instance failed. Keep it to a few
        JSON scalars: it is read for every instance of every evaluation a plot shows.
        """
        return {}

    def failure_metrics(self, record: InstanceRecord) -> dict[str, float]:
        """What a failed instance counts as: the worst value of every metric."""
        return {m.name: m.worst for m in self.metadata.metrics}


TASKS: Registry[Task] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    TASKS.register(cls.metadata.name, cls())
    return cls


def get_task(name: str) -> Task:
    _load_builtin_tasks()
    return TASKS.get(name)


def all_tasks() -> Iterator[Task]:
    _load_builtin_tasks()
    for name in TASKS.names():
        yield TASKS.get(name)


def _load_builtin_tasks() -> None:
    from . import tasks  # noqa: F401  (importing registers the built-in tasks)


def _generate_registered(name: str, spec: InstanceSpec) -> GeneratedInstance:
    """One instance of a registered task, in a build worker (a fresh interpreter finds the task by
    name; a task object is not sent between processes)."""
    return get_task(name).generate(spec)
