"""Early-loss spectral signature (Notsawo, Zhou, Ahmad, Rish & Dumas 2023, "Predicting grokking
long before it happens"): runs that will grok show oscillations in their early training loss. The
observed log training loss is resampled on a uniform step grid up to t_obs, detrended (a cubic in
the step), and the signature is the share of its spectral energy above a quarter of the Nyquist
frequency. A run whose signature exceeds s* is predicted to grok at k * t_obs, the others never;
s* and k are fitted on the dev split (params.json, fit.py). Train-side signals only.

The logged steps are log-spaced, so late in the prefix the resampling interpolates between sparse
points: the signature sees the oscillations of the first few hundred steps best. The training loss
is the same quantity for either architecture, so one s* and k serve both."""
from pathlib import Path

import numpy as np

from phasebench_baselines.grok import NEVER, after_prefix, load_params

_PARAMS = load_params(Path(__file__).resolve().parent)
N_GRID = 128


def signature(problem) -> float:
    steps = np.asarray(problem["steps"], dtype=float)
    loss = np.log(np.maximum(np.asarray(problem["train_loss"], dtype=float), 1e-12))
    keep = steps >= 1
    steps, loss = steps[keep], loss[keep]
    if steps.size < 4:
        return 0.0
    grid = np.linspace(steps[0], steps[-1], N_GRID)
    y = np.interp(grid, steps, loss)
    x = (grid - grid.mean()) / (grid.std() or 1.0)
    resid = y - np.polyval(np.polyfit(x, y, 3), x)
    power = np.abs(np.fft.rfft(resid * np.hanning(N_GRID))) ** 2
    total = power[1:].sum()
    return float(power[len(power) // 4:].sum() / total) if total > 0 else 0.0


def predict_with(problem, s_star: float, k: float) -> float:
    return after_prefix(k * float(problem["t_obs"]), problem) if signature(problem) > s_star else NEVER


def predict(problem):
    return {"t_grok": predict_with(problem, _PARAMS["s_star"], _PARAMS["k"])}
