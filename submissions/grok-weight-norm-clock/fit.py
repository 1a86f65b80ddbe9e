"""Fit c and V* on the dev split by grid search on the headline (mean absolute log error):
python submissions/grok-weight-norm-clock/fit.py"""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from grok_common import dev_problems, mean_log_error, memorised_at, squared_norm, write_params  # noqa: E402
from method import clock  # noqa: E402


def fit() -> dict:
    problems, truth = dev_problems()
    budgets = np.array([p["budget"] for p in problems], dtype=float)
    norms = [np.log10(squared_norm(p, int(np.flatnonzero(p["steps"] == memorised_at(p))[0])))
             for p in problems if memorised_at(p) is not None]
    best = None
    for log10_vstar in np.linspace(min(norms) - 2.0, max(norms), 61):
        for c in np.logspace(-2, 3, 51):
            err = mean_log_error([clock(p, c, log10_vstar) for p in problems], truth, budgets)
            if best is None or err < best[0]:
                best = (err, float(c), float(log10_vstar))
    return {"c": float(f"{best[1]:.6g}"), "log10_vstar": float(f"{best[2]:.6g}"), "dev_error": round(best[0], 6)}


if __name__ == "__main__":
    write_params(HERE, fit())
    print((HERE / "params.json").read_text())
