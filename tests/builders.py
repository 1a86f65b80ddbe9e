"""Builders for tests: tiny defaults, keyword overrides."""
from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager
from pathlib import Path
from textwrap import dedent

import numpy as np
import pytest
import yaml

from benchmark.dataset import SplitData, SplitWriter, open_split
from benchmark.tasks.planted_features.generator import plant
from evaluator.sandbox import BubblewrapSandbox, DockerSandbox

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("PHASEBENCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

_bwrap_ok, _bwrap_why = BubblewrapSandbox().available()
requires_bwrap = pytest.mark.skipif(not _bwrap_ok, reason=f"bubblewrap sandbox unavailable: {_bwrap_why}")
_docker_ok, _docker_why = DockerSandbox().available()
requires_docker = pytest.mark.skipif(not _docker_ok, reason=f"container sandbox unavailable: {_docker_why}")
ISOLATED_PARAMS = [pytest.param("bwrap", marks=requires_bwrap), pytest.param("docker", marks=requires_docker)]
SANDBOX_PARAMS = ["none", *ISOLATED_PARAMS]


def build_tiny_split(root: Path, n_instances: int = 3, n: int = 12, d: int = 6, n_samples: int = 400,
                     split: str = "dev", answers_root: Path | None = None, seed: int = 0, group_public: bool = True):
    """A planted-features split small enough to evaluate in a second (its group public by default, as the
    old layout had it; ``group_public=False`` keeps it in the private index as the task does now)."""
    writer = SplitWriter(root, "planted-features", split, answers_root or root, group_public=group_public)
    for i in range(n_instances):
        params = {"d": d, "n": n, "l0": 2.0, "law": "uniform", "structure": "independent", "n_samples": n_samples}
        planted = plant(params, seed + i)
        writer.add(f"tiny-{i}", f"T{i % 2}", {"n_features": n, "n_samples": n_samples, "dim": d},
                   {"samples": planted.samples},
                   {"features": planted.features, "signed": np.array(False)}, {"params": params})
    writer.close()
    return open_split("planted-features", split, root, answers_root)


def one_per_group(split: SplitData) -> SplitData:
    """The same split cut to the smallest instance of every group (by input file size), kept in id order:
    for properties that hold per instance, so that a test pays for a few small instances, not the whole
    split. The revision is marked as a subset so a stored result can never pass for one of the whole split."""
    by_size = sorted(split.instances, key=lambda r: (split.inputs_path(r.id).stat().st_size, r.id))
    first = {}
    for record in by_size:
        first.setdefault(record.group, record)
    return _subset(split, first.values())


def smallest_instances(split: SplitData, n: int) -> SplitData:
    """The same split cut to its ``n`` smallest instances by input file size, kept in id order, its
    revision marked as a subset (see ``one_per_group``)."""
    by_size = sorted(split.instances, key=lambda r: (split.inputs_path(r.id).stat().st_size, r.id))
    return _subset(split, by_size[:n])


def _subset(split: SplitData, records) -> SplitData:
    kept = sorted(records, key=lambda r: r.id)
    return dataclasses.replace(split, instances=kept, revision=f"{split.revision}+subset:{len(kept)}")


def write_submission(root: Path, name: str = "tiny-method", code: str | None = None, entry: str = "method:run",
                     **spec_overrides) -> Path:
    """A submission folder; ``code`` is the body of method.py (default: returns random atoms)."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"name": name, "authors": ["Test Author"], "description": "a test method", "license": "MIT",
            "url": "https://example.org", "tasks": {"planted-features": entry}, **spec_overrides}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    (folder / "method.py").write_text(dedent(code or """
        import numpy as np
        def run(problem):
            rng = np.random.default_rng(problem["seed"])
            return rng.standard_normal((problem["n_features"], problem["dim"]))
    """))
    return folder




def fake_task(name: str = "fake-task", metrics: list | None = None, version: int = 1):
    """A registered-shape task with no data: for leaderboard tests of direction, versions, groups."""
    from benchmark.metadata import AnswerField, DatasetRef, FieldSpec, Metric, ResourceLimits, TaskMetadata
    from benchmark.task import Task

    metrics = metrics or [Metric(name="error", description="absolute error", higher_is_better=False,
                                 best=0.0, worst=1.0)]
    meta = TaskMetadata(
        name=name, version=version, description=f"a tiny task whose headline {metrics[0].name} is "
        f"{'higher' if metrics[0].higher_is_better else 'lower'}-is-better",
        input_schema={"x": FieldSpec(kind="int", description="x", public_because="the question")},
        answer_schema={"y": AnswerField(kind="scalar", description="y")},
        metrics=metrics, headline=metrics[0].name, groups=["easy", "hard"], group_public=True,
        group_because="a test task",
        limits=ResourceLimits(wall_time_s=1, memory_mb=10, output_mb=1),
        dataset=DatasetRef(repo_id="x/y", config=name, revision="0" * 40))

    class Fake(Task):
        metadata = meta

        def instance_specs(self, split, secret=None):
            return []

        def generate(self, spec):
            raise NotImplementedError

        def score(self, answer, truth, record):
            return {m.name: m.best for m in meta.metrics}

    return Fake()


@contextmanager
def registered(task):
    """Register a task for the duration of a test."""
    from benchmark.task import TASKS, all_tasks

    list(all_tasks())  # the built-in tasks first, so they are not registered after ours
    TASKS.register(task.name, task)
    try:
        yield task.name
    finally:
        TASKS.unregister(task.name)
