"""Sandbox overhead per instance: start, inputs in, answer out, against an in-process call.

Runs a trivial method (returns one atom) on a dev instance of planted-features so that the figure
is the sandbox's own cost. Prints the median over repeats for each backend and the ratio.
    python perf/sandbox_overhead.py [--repeats 15]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.dataset import open_split, read_arrays  # noqa: E402
from evaluator.sandbox import SANDBOXES, WorkerJob, get_sandbox  # noqa: E402
from tests.builders import write_submission  # noqa: E402

CODE = """
import numpy as np
def run(problem):
    return np.asarray(problem["samples"][:1], dtype=np.float64)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    split = open_split("planted-features", "dev")
    record = split.instances[0]
    problem = {**record.public, "instance_id": record.id, "seed": 0, "device": "cpu"}
    from benchmark.task import get_task
    limits = get_task("planted-features").metadata.limits
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_submission(Path(tmp), code=CODE)
        sys.path.insert(0, str(folder))
        import method  # the same code, called in this process

        def in_process() -> None:
            arrays = read_arrays(split.inputs_path(record.id))
            method.run({**problem, **arrays})

        timings = {"in-process": []}
        for _ in range(args.repeats):
            t = time.perf_counter()
            in_process()
            timings["in-process"].append(time.perf_counter() - t)
        for name in SANDBOXES.names():
            sandbox = get_sandbox(name)
            if not sandbox.available()[0]:
                print(f"{name}: unavailable ({sandbox.available()[1]})")
                continue
            job = WorkerJob(folder, "method:run", problem, split.inputs_path(record.id), ["atoms"], limits)
            timings[name] = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                result = sandbox.run(job)
                timings[name].append(time.perf_counter() - t)
                assert result.status == "ok", result.error
    size_mb = split.inputs_path(record.id).stat().st_size / 2**20
    base = statistics.median(timings["in-process"])
    print(f"instance {record.id}: inputs {size_mb:.1f} MB; median of {args.repeats} runs")
    print(f"{'backend':<12}{'median s':>10}{'overhead s':>12}{'x in-process':>14}")
    for name, ts in timings.items():
        med = statistics.median(ts)
        print(f"{name:<12}{med:>10.3f}{med - base:>12.3f}{med / base:>14.1f}")
    print("target: overhead <= 0.300 s per instance on a 2-core machine")


if __name__ == "__main__":
    main()
