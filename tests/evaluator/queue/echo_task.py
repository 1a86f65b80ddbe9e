"""``queue-echo``: the smallest task that goes through the whole evaluator (sandboxed worker, answer
file, validation, scoring, storage), so queue tests and the queue load test measure the queue,
not a method. Importing this module registers nothing (tests use ``registered(EchoTask())``, so the
task never leaks into other tests); worker processes import :data:`MODULE`, which registers it."""
from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import numpy as np

from benchmark.answers import scalar
from benchmark.dataset import InstanceRecord, SplitData, SplitWriter, open_split
from benchmark.metadata import AnswerField, DatasetRef, FieldSpec, Metric, ResourceLimits, TaskMetadata
from benchmark.task import GeneratedInstance, InstanceSpec, Task
from tests.builders import write_submission

__all__ = ["ECHO_TASK", "EchoTask", "build_echo_split", "echo_submission", "MODULE"]

ECHO_TASK = "queue-echo"
#: The module a worker imports (--task-module) to register the task.
MODULE = "tests.evaluator.queue.echo_plugin"


class EchoTask(Task):
    """Instance: an integer x. Answer: y = x + 1. Error: |y - (x + 1)|, capped at 1."""
    metadata = TaskMetadata(
        name=ECHO_TASK, version=1, description="answer x + 1 (a test task for the job queue)",
        input_schema={"x": FieldSpec(kind="int", description="the number", public_because="the question")},
        answer_schema={"y": AnswerField(kind="scalar", description="x + 1")},
        metrics=[Metric(name="error", description="|y - (x + 1)|, capped at 1", higher_is_better=False,
                        best=0.0, worst=1.0)],
        headline="error", groups=["all"], group_public=True, group_because="one group",
        limits=ResourceLimits(wall_time_s=30, memory_mb=2000, output_mb=1),
        dataset=DatasetRef(repo_id="phasebench/tests", config=ECHO_TASK, revision="0" * 40))
    def draw_configs(self, split, rng):
        return [("all", {"x": int(rng.integers(100))})]

    def generate(self, spec: InstanceSpec) -> GeneratedInstance:
        x = int(spec.params["x"])
        return GeneratedInstance({"x": x}, {"x_array": np.array([x], dtype=np.int64)},
                                 {"y": np.array(x + 1.0)})

    def score(self, answer: dict[str, np.ndarray], truth: dict[str, np.ndarray],
              record: InstanceRecord) -> dict[str, float]:
        expected = scalar(truth["y"])
        return {"error": min(1.0, abs(float(answer["y"]) - expected))}


def build_echo_split(root: Path, n_instances: int = 1, split: str = "dev", first_x: int = 0) -> SplitData:
    writer = SplitWriter(root, ECHO_TASK, split, root)
    task = EchoTask()
    for i in range(n_instances):
        inst = task.generate(InstanceSpec(f"echo-{i}", "all", {"x": first_x + i}, i))
        writer.add(f"echo-{i}", "all", inst.public_fields, inst.inputs, inst.answer, {})
    writer.close()
    return open_split(ECHO_TASK, split, root)


def echo_submission(root: Path, name: str = "echo-method", sleep_s: float = 0.0, offset: float = 1.0,
                    extra: str = "") -> Path:
    """A submission answering x + ``offset`` (1 is right) after sleeping ``sleep_s``; ``extra`` is
    code run first inside run() (e.g. to record the slot's environment)."""
    lines = ["import os, time", "import numpy as np", "", "def run(problem):"]
    lines += ["    " + line for line in dedent(extra).splitlines() if line.strip()]
    lines += [f"    time.sleep({sleep_s!r})", f"    return np.array(float(problem['x']) + {offset!r})", ""]
    body = "\n".join(lines)
    return write_submission(root, name=name, code=body, tasks={ECHO_TASK: "method:run"})
