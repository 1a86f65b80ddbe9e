"""Fit the threshold s* and the multiplier k on the dev split (grid search on the mean absolute
log error): python submissions/grok-spectral-signature/fit.py"""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchmark.dataset import open_split  # noqa: E402
from phasebench_baselines.grok import problems_of, mean_log_error, write_params  # noqa: E402
from method import predict_with, signature  # noqa: E402


def fit() -> dict:
    problems, truth = problems_of(open_split("grokking-onset", "dev"))
    budgets = np.array([p["budget"] for p in problems], dtype=float)
    sigs = np.array([signature(p) for p in problems])
    best = None
    for s_star in np.unique(np.concatenate([[-1.0], sigs])):
        for k in np.logspace(0, 2, 41):
            err = mean_log_error([predict_with(p, s_star, k) for p in problems], truth, budgets)
            if best is None or err < best[0]:
                best = (err, float(s_star), float(k))
    return {"s_star": float(f"{best[1]:.6g}"), "k": float(f"{best[2]:.6g}"), "dev_error": round(best[0], 6)}


if __name__ == "__main__":
    write_params(HERE, fit())
    print((HERE / "params.json").read_text())
