"""Do the CPU design's ranges suit the one-layer transformer? Trains four transformer runs (Nanda et
al. 2023 configuration, p = 23, T = 2000, one batch, one thread) and prints t_mem, t_grok and the
final accuracies of each, with the wall time.

    python perf/grokking_transformer_onsets.py          # about 5 minutes on one loaded CPU core
"""
from __future__ import annotations

import time

import torch

from benchmark.tasks.grokking_onset.answer import onset
from benchmark.tasks.grokking_onset.transformer import TransformerConfig, train_transformer_batch

BUDGET = 2000


def main() -> None:
    torch.set_num_threads(1)
    configs = [TransformerConfig(op=op, p=23, lr=lr, wd=1.0, train_frac=0.6, init_scale=1.0, dtype="float32", seed=s)
               for s, (op, lr) in enumerate([("add", 1e-2), ("add", 3e-3), ("mul", 1e-2), ("sub", 5e-3)])]
    start = time.perf_counter()
    curves = train_transformer_batch(configs, BUDGET, 120, [])
    wall = time.perf_counter() - start
    print(f"{len(configs)} runs x {BUDGET} steps in {wall:.0f} s ({len(configs) * (BUDGET + 1) / wall:.0f} model-steps/s)")
    for c, cu in zip(configs, curves):
        o = onset(cu.steps, cu.metrics["train_acc"], cu.metrics["test_acc"], BUDGET)
        print(f"{c.op:>4} lr {c.lr:g}: t_mem {o.t_mem}, t_grok {o.t_grok if o.t_grok is not None else 'never'}, "
              f"final train/test accuracy {cu.metrics['train_acc'][-1]:.3f}/{cu.metrics['test_acc'][-1]:.3f}")


if __name__ == "__main__":
    main()
