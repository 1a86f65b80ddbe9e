"""What training one grokking-onset run to its budget costs on this machine, per architecture: the
task's own trainer (eager, the data builds' code), one run alone, on one CPU thread by default. The
task's per-instance wall-time limits are a fraction of these costs (issue 16: a method that can
re-train the public configuration inside its limit would be re-simulating the run, not predicting it).

    python perf/grokking_run_cost.py                 # every embedded-scale shape, 10% of each budget timed
    python perf/grokking_run_cost.py --fraction 1    # whole runs (about 1 min per MLP, 4 per transformer)
    python perf/grokking_run_cost.py --threads 2

Each shape is timed on ``--fraction`` of its budget (after 20 untimed warm-up steps) and the rate is
scaled to the full budget, at the smallest and the largest modulus of the embedded dev and test designs
(MLP 23 and 31, transformer 17 and 19): the cheapest and the dearest instances. Wall and CPU seconds
are both printed, with the load average: on a shared machine the wall time is an upper bound, and
on one thread the CPU time is the run's own cost.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from benchmark.tasks.grokking_onset.design import DESIGNS
from benchmark.tasks.grokking_onset.trainer import RunConfig, train_batch
from benchmark.tasks.grokking_onset.transformer import TransformerConfig, train_transformer_batch

WARMUP = 20


def seconds_per_run(cfg: RunConfig | TransformerConfig, budget: int, n_log: int,
                    fraction: float) -> tuple[float, float]:
    """(wall, CPU) seconds for ``budget`` steps of one run, from ``fraction`` of them timed after
    ``WARMUP`` steps. On one thread the CPU time is what the run costs whatever else the machine runs."""
    steps = max(1, int(round(fraction * budget)))
    started: list[tuple[float, float]] = []

    def clock(step_indices):
        for t in step_indices:
            if t == WARMUP:
                started.append((time.perf_counter(), time.process_time()))
            yield t

    train = train_batch if isinstance(cfg, RunConfig) else train_transformer_batch
    train([cfg], WARMUP + steps, n_log, [], progress=clock)   # type: ignore[arg-type]
    scale = budget / (steps + 1)
    return (time.perf_counter() - started[0][0]) * scale, (time.process_time() - started[0][1]) * scale


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--fraction", type=float, default=0.1, help="share of each budget timed (default 0.1)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    design = DESIGNS["test"]
    tf = design.transformers
    assert tf is not None
    mlp_p = sorted({p for d in DESIGNS.values() for p in d.moduli})
    tf_p = sorted({p for d in DESIGNS.values() if d.transformers for p in d.transformers.moduli})
    print(f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{args.fraction:.0%} of each budget timed")
    print(f"{'architecture':<12} {'shape':<28} {'budget':>7} {'wall s':>8} {'CPU s':>8} {'CPU ms/step':>12}")
    for p in (mlp_p[0], mlp_p[-1]):
        for width in sorted(set(design.widths)):
            for act in sorted(set(design.acts)):
                for dtype in ("float32", "float64"):
                    cfg = RunConfig(op="add", p=p, width=width, act=act, lr=1e-2, wd=1.0, train_frac=0.7,
                                    init_scale=1.0, dtype=dtype, seed=0)
                    wall, cpu = seconds_per_run(cfg, design.budget, design.n_log, args.fraction)
                    print(f"{'mlp':<12} {f'p={p} width={width} {act} {dtype}':<28} {design.budget:>7} {wall:>8.1f} "
                          f"{cpu:>8.1f} {1e3 * cpu / design.budget:>12.2f}", flush=True)
    for p in (tf_p[0], tf_p[-1]):
        tcfg = TransformerConfig(op="add", p=p, lr=3e-3, wd=1.0, train_frac=0.7, init_scale=1.0, dtype="float32",
                                 seed=0, d_model=tf.d_model, n_heads=tf.n_heads, d_mlp=tf.d_mlp)
        wall, cpu = seconds_per_run(tcfg, tf.schedule.budget, tf.schedule.n_log, args.fraction)
        print(f"{'transformer':<12} {f'p={p} d_model={tf.d_model} float32':<28} {tf.schedule.budget:>7} "
              f"{wall:>8.1f} {cpu:>8.1f} {1e3 * cpu / tf.schedule.budget:>12.2f}", flush=True)

if __name__ == "__main__":
    main()
