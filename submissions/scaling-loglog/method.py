"""Log-log least squares baseline for scaling-exponents.

log L = c0 - sum_j s_j log x_j, fitted by least squares on all observations (one regressor per
varying variable: log N and log D jointly for the two-variable instances, the single varying
variable otherwise) with every slope s_j >= 0: a loss that grows with scale is no power law. The
reported exponents are the slopes (alpha for the first variable, beta for the second). A slope at 0
(the loss does not fall with that variable) leaves the exponent unidentified: the answer falls back
to the smallest observed loss with no exponent, and says so on stderr (phasebench_baselines.scaling). No loss
floor: the simple floor-free reference the other fits must beat. The 90% interval is
phasebench_baselines.scaling's calibrated one, K below. numpy and scipy only.
"""
from __future__ import annotations

import numpy as np
from phasebench_baselines import scaling as sc
from scipy.optimize import lsq_linear

SLOPE_MAX = 10.0
#: the interval's multiplier: the smallest K (steps of 0.1) whose 90% intervals cover 85% of the
#: held-out losses of the train split's 68 instances (phasebench_baselines.scaling; calibrate_intervals.py)
K = 4.5


def fit(LX, ly, w=None):
    """theta = (c0, s_1, ..., s_p); weighted least squares with 0 <= s_j <= SLOPE_MAX."""
    sw = np.sqrt(np.ones_like(ly) if w is None else w)
    A = np.column_stack([np.ones(len(ly)), -LX]) * sw[:, None]
    p = LX.shape[1]
    lo = np.r_[-np.inf, np.zeros(p)]
    hi = np.r_[np.inf, np.full(p, SLOPE_MAX)]
    return lsq_linear(A, ly * sw, bounds=(lo, hi), method="bvls").x


def log_predict(theta, LX):
    return theta[0] - LX @ theta[1:]


def _check(theta, LX, ly):
    return sc.exponent_at_bound([float(s) for s in theta[1:]], 0.0, SLOPE_MAX)


LAW = sc.Law(name="log-log power law", fit=fit, refit=lambda th, LX, ly, w: fit(LX, ly, w),
             log_predict=log_predict, exponents=lambda th: [float(s) for s in th[1:]], check=_check)


def predict(problem):
    return sc.predict("scaling-loglog", problem, [LAW], K)
