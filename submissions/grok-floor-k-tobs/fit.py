"""Fit k for each architecture on the dev split: python submissions/grok-floor-k-tobs/fit.py

The mean absolute log error of k t_obs, as a function of log k, is piecewise linear (each run's
term |log10 min(k t_obs, T) - log10 y| bends only where k t_obs = y or k t_obs = T), so its minimum
lies on one of those bends: every one is tried and the best kept (the smallest k on a tie). This is
the exact minimiser, where a median of y / t_obs would ignore the clipping at the budget T."""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchmark.dataset import open_split  # noqa: E402
from phasebench_baselines.grok import (  # noqa: E402
    ARCHITECTURES,
    architecture,
    mean_log_error,
    problems_of,
    write_params,
)


def error(k: float, t_obs: np.ndarray, truth: np.ndarray, budgets: np.ndarray) -> float:
    """The headline of k t_obs on these runs (with method.py's floor of t_obs + 1)."""
    return mean_log_error(np.maximum(k * t_obs, t_obs + 1.0), truth, budgets)


def fit_one(t_obs: np.ndarray, truth: np.ndarray, budgets: np.ndarray) -> dict:
    candidates = np.unique(np.concatenate([truth / t_obs, budgets / t_obs]))
    # k is kept at full precision: rounding a bend moves it off the minimum
    errors = [(error(float(k), t_obs, truth, budgets), float(k)) for k in candidates]
    err, k = min(errors)
    return {"k": k, "dev_error": round(err, 6), "n_dev": int(truth.size)}


def fit() -> dict:
    problems, truth = problems_of(open_split("grokking-onset", "dev"))
    arch = np.array([architecture(p) for p in problems])
    t_obs = np.array([p["t_obs"] for p in problems], dtype=float)
    budgets = np.array([p["budget"] for p in problems], dtype=float)
    fits = {a: fit_one(t_obs[arch == a], truth[arch == a], budgets[arch == a]) for a in ARCHITECTURES}
    return {"k": {a: f["k"] for a, f in fits.items()}, "dev_error": {a: f["dev_error"] for a, f in fits.items()},
            "n_dev": {a: f["n_dev"] for a, f in fits.items()}}


if __name__ == "__main__":
    write_params(HERE, fit())
    print((HERE / "params.json").read_text())
