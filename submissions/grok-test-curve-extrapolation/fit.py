"""Fit the accuracy level a*, the log-loss level ln L* and the stall factor m on the with-test dev
split (grid search on the mean absolute log error): python submissions/grok-test-curve-extrapolation/fit.py"""
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchmark.dataset import open_split  # noqa: E402
from phasebench_baselines.grok import problems_of, mean_log_error, write_params  # noqa: E402
from method import from_trends, trends  # noqa: E402

ACC_LEVELS = np.linspace(0.1, 1.5, 29)
LOG_LOSS_LEVELS = np.linspace(-4.0, 2.0, 31)
STALL_FACTORS = [*np.logspace(0, 2, 11), math.inf]


def fit() -> dict:
    problems, truth = problems_of(open_split("grokking-onset-with-test", "dev"))
    budgets = np.array([p["budget"] for p in problems], dtype=float)
    fitted = [(trends(p), float(p["t_obs"])) for p in problems]   # the trends do not depend on the levels
    floor = np.array([t_obs + 1.0 for _, t_obs in fitted])         # after_prefix: at least t_obs + 1
    best = None
    for acc_level in ACC_LEVELS:
        for log_loss_level in LOG_LOSS_LEVELS:
            for stall in STALL_FACTORS:
                steps = np.array([from_trends(f, t_obs, acc_level, log_loss_level, stall) for f, t_obs in fitted])
                err = mean_log_error(np.maximum(steps, floor), truth, budgets)
                if best is None or err < best[0] - 1e-12:
                    best = (err, float(acc_level), float(log_loss_level), float(stall))
    err, acc_level, log_loss_level, stall = best
    return {"acc_level": float(f"{acc_level:.6g}"), "log_loss_level": float(f"{log_loss_level:.6g}"),
            # JSON has no infinity: "never" is written as null
            "stall_factor": None if math.isinf(stall) else float(f"{stall:.6g}"), "dev_error": round(err, 6)}


if __name__ == "__main__":
    write_params(HERE, fit())
    print((HERE / "params.json").read_text())
