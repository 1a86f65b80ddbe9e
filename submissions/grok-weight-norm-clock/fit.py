"""Fit c and V* for each architecture on the dev split by grid search on the headline (mean absolute
log error over that architecture's runs): python submissions/grok-weight-norm-clock/fit.py"""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchmark.dataset import open_split  # noqa: E402
from phasebench_baselines.grok import (ARCHITECTURES, architecture, mean_log_error, memorised_at,  # noqa: E402
                                        problems_of, squared_norm, write_params)
from method import clock  # noqa: E402


def fit_one(problems: list, truth: np.ndarray) -> dict:
    budgets = np.array([p["budget"] for p in problems], dtype=float)
    norms = [np.log10(squared_norm(p, int(np.flatnonzero(p["steps"] == memorised_at(p))[0])))
             for p in problems if memorised_at(p) is not None]
    if not norms:
        raise ValueError("no run of this architecture memorised within its observed prefix: nothing to fit")
    best = None
    for log10_vstar in np.linspace(min(norms) - 2.0, max(norms), 61):
        for c in np.logspace(-2, 3, 51):
            err = mean_log_error([clock(p, c, log10_vstar) for p in problems], truth, budgets)
            if best is None or err < best[0]:
                best = (err, float(c), float(log10_vstar))
    return {"c": float(f"{best[1]:.6g}"), "log10_vstar": float(f"{best[2]:.6g}"), "dev_error": round(best[0], 6),
            "n_dev": len(problems)}


def fit() -> dict:
    problems, truth = problems_of(open_split("grokking-onset", "dev"))
    arch = np.array([architecture(p) for p in problems])
    return {a: fit_one([p for p, b in zip(problems, arch) if b == a], truth[arch == a]) for a in ARCHITECTURES}


if __name__ == "__main__":
    write_params(HERE, fit())
    print((HERE / "params.json").read_text())
