"""Forward passes per second through the black-box oracle channel against the same model in process.

Serves a rare-behavior dev instance's model (an F1 MLP and an F3 transformer) over the Unix-socket
channel exactly as the evaluator does (OracleServer in this process, OracleClient as the worker
uses it) and times batches of 4096 rows; the in-process figure calls the same model's forward on the
same batches. The issue's target: the channel keeps at least half the in-process rate.
    python perf/oracle_overhead.py [--batch 4096] [--calls 32]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.dataset import open_split  # noqa: E402
from benchmark.task import get_task  # noqa: E402
from evaluator.sandbox.oracle_channel import OracleServer  # noqa: E402
from evaluator.sandbox.worker_entry import OracleClient  # noqa: E402


def _batches(record, oracle, batch, calls, rng):
    if record.public["architecture"] == "transformer":
        return [rng.integers(0, record.public["vocab"], (batch, *oracle.input_shape)) for _ in range(calls)]
    return [rng.standard_normal((batch, *oracle.input_shape)) for _ in range(calls)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--calls", type=int, default=32)
    args = ap.parse_args()
    task = get_task("rare-behavior")
    split = open_split(task.name, "dev")
    picks = {}
    for record in split.instances:
        picks.setdefault(record.public["architecture"], record)
    rng = np.random.default_rng(0)
    print(f"rare-behavior oracle, batch {args.batch}, {args.calls} calls")
    print(f"{'model':<28}{'in-process /s':>16}{'oracle /s':>14}{'ratio':>8}")
    for arch, record in sorted(picks.items()):
        oracle = task.oracle(record, split.load_answer(record.id))
        oracle.budget = args.batch * args.calls
        xs = [x.astype(oracle.input_dtype) for x in _batches(record, oracle, args.batch, args.calls, rng)]
        start = time.perf_counter()
        for x in xs:
            oracle.forward(x)
        local = args.batch * args.calls / (time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp, OracleServer(oracle, Path(tmp)) as server:
            client = OracleClient(str(server.path), oracle.budget, oracle.input_shape, oracle.input_dtype)
            start = time.perf_counter()
            for x in xs:
                client(x)
            remote = args.batch * args.calls / (time.perf_counter() - start)
        name = f"{record.id} ({arch})"
        print(f"{name:<28}{local:>16,.0f}{remote:>14,.0f}{remote / local:>8.2f}")


if __name__ == "__main__":
    main()
