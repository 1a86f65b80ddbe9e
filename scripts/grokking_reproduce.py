"""Retrain committed grokking-onset dev runs on this machine and compare their answers.

The committed dev files were trained on an Intel processor; on another (or a GPU) float32 training
drifts from rounding and the drift grows (dataset card, grokking-onset). This script measures what
that does to the answers: it retrains whole batches of the dev split exactly as the build does
(same batches, one thread each, the reference build environment) and prints, per kept instance,
the committed and the retrained t_mem and t_grok, and the mean |log10 ratio| of the grok steps
clipped to [1, T] (the task's own error: a floor no method can beat on runs trained elsewhere).

    python scripts/grokking_reproduce.py --batches 2       # the first two batches (longest first)
    python scripts/grokking_reproduce.py --batches 0        # every batch: the whole dev split (~1 h)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmark.build_env import missing_reference_env  # noqa: E402  (before numpy and torch load)


def _retrain(args):
    from benchmark.tasks.grokking_onset.answer import onset
    from benchmark.tasks.grokking_onset.design import DESIGNS
    from benchmark.tasks.grokking_onset.generator import schedule_of, train_chunk
    configs, = args
    schedule = schedule_of(DESIGNS["dev"], configs[0])
    return [onset(c.steps, c.metrics["train_acc"], c.metrics["test_acc"], schedule.budget)
            for c in train_chunk(configs, schedule)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=2, help="how many batches to retrain (0: all)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args()
    missing = missing_reference_env()
    if missing:
        sys.exit(subprocess.run([sys.executable, *sys.argv], env={**os.environ, **missing}).returncode)

    import numpy as np
    from benchmark.dataset import open_split
    from benchmark.tasks.grokking_onset.design import DESIGNS
    from benchmark.tasks.grokking_onset.generator import CPU_BATCH, _STEP_COST, architecture_of, batches, run_configs, \
        schedule_of
    from benchmark.tasks.grokking_onset.task import GrokkingOnset
    from benchmark.tasks.grokking_onset.scorer import log_step_error

    design = DESIGNS["dev"]
    task = GrokkingOnset()
    configs = run_configs("dev", task.run_seeds("dev"), design)
    chunks = batches(configs, CPU_BATCH)
    chunks.sort(key=lambda c: -len(c) * schedule_of(design, configs[c[0]]).budget
                * _STEP_COST[architecture_of(configs[c[0]])])
    chunks = chunks if args.batches == 0 else chunks[:args.batches]
    split = open_split("grokking-onset", "dev")
    kept = {r.id: r for r in split.instances}
    cpu = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    vendor = next((line.split(":")[1].strip() for line in cpu.splitlines() if line.startswith("vendor_id")), "?")
    print(f"processor vendor {vendor}; retraining {sum(map(len, chunks))} runs in {len(chunks)} batches")
    start = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_retrain, [([configs[i] for i in c],) for c in chunks]))
    errors = []
    print(f"{'instance':<16} {'dtype':<8} {'t_mem':>13} {'t_grok committed':>17} {'retrained':>10} {'|dlog10|':>9}")
    for chunk, onsets in zip(chunks, results):
        for i, o in zip(chunk, onsets):
            iid = task.instance_id("dev", i, configs[i].op)
            if iid not in kept:
                continue
            truth = split.load_answer(iid)
            committed = float(np.asarray(truth["t_grok"]).reshape(()))
            mine = float(o.target)
            err = log_step_error(mine, committed, o.budget)
            errors.append(err)
            t_mem = int(np.asarray(truth["t_mem"]).reshape(()))
            print(f"{iid:<16} {configs[i].dtype:<8} {t_mem:>6}/{o.t_mem if o.t_mem is not None else -1:<6} "
                  f"{committed:>17.0f} {mine:>10.0f} {err:>9.3f}")
    if errors:
        print(f"{len(errors)} instances: mean |log10 ratio| {np.mean(errors):.3f}, max {np.max(errors):.3f}, "
              f"{sum(e > 0 for e in errors)} differ; {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
