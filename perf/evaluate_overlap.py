"""The next evaluation taking the worker slots the last instances of the one before leave
(`phasebench evaluate --workers N`, evaluator.runner.InstanceSlots), against evaluations one after another.

Runs the same request (submissions x their tasks, dev split, forced: nothing reused) through
evaluator.request.evaluate_request with overlap on and off, alternating, each run on a fresh results
database, and prints each run's wall time, the median of each mode and their ratio.
    python perf/evaluate_overlap.py [--workers 2] [--repeats 3] [--sandbox bwrap] [SUBMISSION ...]
Default submissions: cheap floors (their instances take well under a second), on five tasks, so
that the boundaries between evaluations weigh as much as they can.

Measured (2 cores, bwrap, 2 workers, a shared machine): the defaults, 4 rounds on a quiet spell,
off 14.6-15.2 s, on 14.3-14.7 s (earlier rounds under load: off 22-31 s, on 18-25 s: noise larger
than the effect); grok-config-gbr + scaling-loglog off 10.2/10.7 s, on 10.9/11.0 s. Counting
instances running over time: overlap removes the ~0.5 s per request with none running between
evaluations, but the time with one of two running stays (floors ~1 s of 14 s; three grokking/rare
submissions 5.2 -> 4.6 s of 46 s), as the parent's own work (scoring, the summary and board
snapshot of the evaluation ending, staging the next) runs on the same two cores: an idle slot
there was seldom an idle CPU. No wall-time gain measurable above the noise.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluator.request import EvaluationRequest, Evaluated, evaluate_request  # noqa: E402
from evaluator.store import ResultsStore, make_engine, upgrade  # noqa: E402

DEFAULT = ["planted-floor-duplicates", "rare-floor-prior", "scaling-floor-prior-exponents", "grok-constant-median"]


def one_run(request: EvaluationRequest, overlap: bool, db: Path) -> tuple[float, dict[tuple[str, str], float | None]]:
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    start = time.perf_counter()
    results = list(evaluate_request(request, ResultsStore(engine), overlap=overlap))
    wall = time.perf_counter() - start
    engine.dispose()
    headlines = {}
    for r in results:
        if not isinstance(r, Evaluated):
            sys.exit(f"not evaluated: {r}")
        headlines[(r.outcome.submission, r.outcome.task)] = r.outcome.headline
    return wall, headlines


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("submissions", nargs="*", default=DEFAULT)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sandbox", default="bwrap")
    args = ap.parse_args()
    request = EvaluationRequest(submissions=[ROOT / "submissions" / s for s in args.submissions], split="dev",
                                sandbox=args.sandbox, workers=args.workers, force=True)
    print(f"{len(os.sched_getaffinity(0))} CPUs, sandbox {args.sandbox}, workers {args.workers}, "
          f"submissions {', '.join(args.submissions)}", flush=True)
    walls: dict[bool, list[float]] = {False: [], True: []}
    seen: dict[bool, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            # alternating, the order flipped each round, so that drift on a shared machine hits both
            for overlap in ((False, True) if i % 2 == 0 else (True, False)):
                wall, seen[overlap] = one_run(request, overlap, Path(tmp) / f"{i}-{overlap}.sqlite")
                walls[overlap].append(wall)
                print(f"  round {i + 1}  overlap {'on ' if overlap else 'off'}  {len(seen[overlap])} evaluations  "
                      f"{wall:6.1f} s", flush=True)
    off, on = statistics.median(walls[False]), statistics.median(walls[True])
    spread = {k: (max(v) - min(v)) / statistics.median(v) for k, v in walls.items()}
    print(f"median: off {off:.1f} s, on {on:.1f} s, on/off {on / off:.3f} "
          f"(spread within a mode: off {spread[False]:.1%}, on {spread[True]:.1%})")
    # Thread counts are the same either way: the headlines must be too.
    print("headlines identical:", seen[False] == seen[True])


if __name__ == "__main__":
    main()
