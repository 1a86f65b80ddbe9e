"""Instances evaluated at once (`phasebench evaluate --workers N`) against one at a time.

Evaluates the same submissions on the embedded dev splits twice, in the same process and on fresh
results databases: once with one worker, once with N. Prints each evaluation's wall time, the
ratio, and whether the headline scores agree (a worker with fewer BLAS threads may round
differently; the figure says by how much).
    python perf/parallel_instances.py [--workers 2] [--sandbox bwrap] [SUBMISSION ...]
Default submissions: one import-heavy (scikit-learn), one torch-heavy, one oracle-querying.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark.dataset import open_split  # noqa: E402
from benchmark.task import get_task  # noqa: E402
from evaluator.runner import evaluate_submission  # noqa: E402
from evaluator.sandbox import get_sandbox  # noqa: E402
from evaluator.store import ResultsStore, make_engine, upgrade  # noqa: E402
from evaluator.submission import load_submission  # noqa: E402

DEFAULT = ["grok-config-gbr", "topk-sae", "rare-mc"]


def run_all(submissions, sandbox, workers: int, db: Path) -> dict[tuple[str, str], tuple[float, float | None]]:
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    store = ResultsStore(engine)
    out = {}
    for sub in submissions:
        for task_name in sub.spec.tasks:
            task = get_task(task_name)
            split = open_split(task_name, "dev")
            start = time.perf_counter()
            outcome = evaluate_submission(sub, task, split, sandbox, store, force=True, workers=workers)
            wall = time.perf_counter() - start
            if outcome.n_failed:
                print(f"  warning: {sub.name} / {task_name}: {outcome.n_failed} failed instances", flush=True)
            out[(sub.name, task_name)] = (wall, outcome.headline)
            print(f"  workers={workers}  {sub.name} / {task_name}: {wall:.1f} s, "
                  f"{outcome.headline_metric} {outcome.headline}", flush=True)
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("submissions", nargs="*", default=DEFAULT)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--sandbox", default="bwrap")
    args = ap.parse_args()
    sandbox = get_sandbox(args.sandbox)
    ok, why = sandbox.available()
    if not ok:
        sys.exit(f"sandbox {args.sandbox!r} unavailable: {why}")
    subs = [load_submission(ROOT / "submissions" / name) for name in args.submissions]
    print(f"{len(os.sched_getaffinity(0))} CPUs, sandbox {args.sandbox}, workers 1 vs {args.workers}")
    with tempfile.TemporaryDirectory() as tmp:
        serial = run_all(subs, sandbox, 1, Path(tmp) / "serial.sqlite")
        parallel = run_all(subs, sandbox, args.workers, Path(tmp) / "parallel.sqlite")
    print(f"\n{'submission / task':45s} {'1 worker':>9s} {f'{args.workers} workers':>10s} {'speed-up':>9s} "
          f"{'|headline diff|':>16s}")
    for key, (t1, h1) in serial.items():
        tn, hn = parallel[key]
        diff = "—" if h1 is None or hn is None else f"{abs(h1 - hn):.2e}"
        print(f"{' / '.join(key):45s} {t1:8.1f}s {tn:9.1f}s {t1 / tn:8.2f}x {diff:>16s}")
    total1 = sum(t for t, _ in serial.values())
    totaln = sum(t for t, _ in parallel.values())
    print(f"{'total':45s} {total1:8.1f}s {totaln:9.1f}s {total1 / totaln:8.2f}x")


if __name__ == "__main__":
    main()
