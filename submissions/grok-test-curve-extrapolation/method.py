"""Test-curve extrapolation (the with-test track only): before a run groks, its held-out curves
move first. Test accuracy climbs and the test loss, which rose while the training set was being
memorised, turns and falls as weight decay cleans the memorising solution up. Over the last part
of the observed prefix (logged steps from t_obs / WINDOW to t_obs) both are fitted linearly in
log10 step by least squares:

- a rising accuracy acc(t) = a + b log10 t reaches the level a* at 10^((a* - a) / b);
- a falling log loss ln L(t) = c + d log10 t reaches the level ln L* at 10^((ln L* - c) / d);

and the earlier of the two crossings is the predicted grok step (at least t_obs + 1). A run
whose test curves do neither (accuracy flat or falling, loss flat or rising: no sign of
generalising yet) is predicted at m * t_obs, "never" when m is infinite. a*, L* and m are fitted
on the dev split (params.json, fit.py). Architecture-agnostic: the curves are the same quantities
for the MLP and the transformer runs, and the levels are in accuracy and loss units."""
import math
from pathlib import Path

import numpy as np

from phasebench_baselines.grok import NEVER, after_prefix, load_params

_PARAMS = load_params(Path(__file__).resolve().parent)
WINDOW = 2.0          # the fit uses the logged steps in [t_obs / WINDOW, t_obs]
MIN_POINTS = 3
MAX_LOG10_STEP = 12.0  # crossings further out than this are "never"


def trends(problem) -> tuple[float, float, float, float] | None:
    """(accuracy at t_obs, accuracy slope per decade, log loss at t_obs, log-loss slope per decade),
    from the least-squares lines over the window; None with fewer than MIN_POINTS logged steps in it."""
    steps = np.asarray(problem["steps"], dtype=float)
    t_obs = float(problem["t_obs"])
    keep = (steps >= max(1.0, t_obs / WINDOW)) & (steps <= t_obs)
    if keep.sum() < MIN_POINTS:
        return None
    x = np.log10(steps[keep]) - math.log10(t_obs)        # 0 at t_obs: the intercepts are the values there
    acc = np.asarray(problem["test_acc"], dtype=float)[keep]
    log_loss = np.log(np.maximum(np.asarray(problem["test_loss"], dtype=float)[keep], 1e-12))
    acc_slope, acc_now = np.polyfit(x, acc, 1)
    loss_slope, loss_now = np.polyfit(x, log_loss, 1)
    return float(acc_now), float(acc_slope), float(loss_now), float(loss_slope)


def from_trends(fitted, t_obs: float, acc_level: float, log_loss_level: float, stall_factor: float) -> float:
    """The predicted step from the window's trends (:func:`trends`), before the floor at t_obs + 1."""
    stalled = math.inf if math.isinf(stall_factor) else stall_factor * t_obs
    if fitted is None:
        return stalled
    acc_now, acc_slope, loss_now, loss_slope = fitted
    decades = []
    if acc_slope > 0:
        decades.append(max(acc_level - acc_now, 0.0) / acc_slope)
    if loss_slope < 0:
        decades.append(max(loss_now - log_loss_level, 0.0) / -loss_slope)
    if not decades:
        return stalled
    log10_step = math.log10(t_obs) + min(decades)
    return NEVER if log10_step > MAX_LOG10_STEP else 10 ** log10_step


def predict_with(problem, acc_level: float, log_loss_level: float, stall_factor: float) -> float:
    step = from_trends(trends(problem), float(problem["t_obs"]), acc_level, log_loss_level, stall_factor)
    return NEVER if math.isinf(step) else after_prefix(step, problem)


def predict(problem):
    stall = _PARAMS["stall_factor"]
    return {"t_grok": predict_with(problem, _PARAMS["acc_level"], _PARAMS["log_loss_level"],
                                   math.inf if stall is None else stall)}  # null in params.json: never
