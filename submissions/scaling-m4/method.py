"""M4 estimator (Alabdulmohsin, Neyshabur & Zhai 2022) for scaling-exponents.

One varying variable x (N, D, C or step), with x normalised by its geometric mean:
    (L - E) / (L0 - L)^a = beta x^c,   c <= 0,  a >= 0,  0 < E < L0,
so L = E + w(x) where w solves  log w - a log(L0 - E - w) = log beta + c log x  (w in (0, L0 - E),
found by bisection on w = (L0 - E) sigmoid(s); the left side is increasing in s).

Fitting, in two stages:
 1. The reference estimator's own step (google-research/revisiting_neural_scaling_laws): for each
    (E, L0) on a 6 x 5 grid (E from 2% to 99.9% of the smallest loss, L0 - max L from 1% to 10x the
    loss range), least squares of log(L - E) on (1, log x, log(L0 - L)) with c <= 0, a >= 0.
 2. From the 4 grid points whose implied curves fit best, trust-region least squares (analytic
    Jacobian by implicit differentiation) of all five parameters on the residual log L_hat - log L
    with scipy's soft-L1 robust loss (scale 1e-3).
Stage 2 departs from the reference code, which keeps minimising the squared error of log(L - E):
with noisy losses that objective blows up the noise of points near E and, on our synthetic M4
curves, always drives E to 0 (the exponent then comes out about 3x too small); the functional form
is unchanged.

As x grows L - E ~ beta (L0 - E)^a x^c, so the reported exponent is alpha = -c (the task's
convention L - E ~ x^-alpha). The fit is checked (phasebench_baselines.scaling): c at a bound of [-6, 0] or a
reducible loss L - E below 0.1% of the loss at the largest x (a law that has flattened inside the
data, whatever its c) means alpha is not identified, and the answer falls back to Chinchilla
approach 3 (phasebench_baselines.approach3, the scaling-approach3 baseline's law), then to the smallest
observed loss; the fallback is said on stderr. Two varying variables (N, D) go to approach 3
directly, since M4 is a one-variable law. The 90% interval is phasebench_baselines.scaling's calibrated one, K
below.
"""
from __future__ import annotations

import numpy as np
from phasebench_baselines import approach3 as a3
from phasebench_baselines import scaling as sc
from scipy.optimize import lsq_linear

F_SCALE = 1e-3
N_REFINE = 4
C_MIN = -6.0
#: the interval's multiplier: the smallest K (steps of 0.1) whose 90% intervals cover 85% of the
#: held-out losses of the train split's 68 instances (phasebench_baselines.scaling; calibrate_intervals.py)
K = 1.8


def _logsig(s):
    return -np.logaddexp(0.0, -s)


def _solve_w(lf, lb, a, iters=64):
    """w in (0, b) with log w - a log(b - w) = lf, b = e^lb; returns (log w, log(b - w))."""
    lo = np.full_like(lf, -200.0)
    hi = np.full_like(lf, 200.0)
    c0 = (1.0 - a) * lb
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        g = c0 + _logsig(mid) - a * _logsig(-mid) - lf
        pos = g > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    s = 0.5 * (lo + hi)
    return lb + _logsig(s), lb + _logsig(-s)


# theta = (e, v, lbeta, c, a): E = e^e, L0 - E = e^v
def _curve(theta, lx):
    e, v, lbeta, c, a = theta
    lw, lbw = _solve_w(lbeta + c * lx, v, a)
    L = np.exp(e) + np.exp(lw)
    return L, lw, lbw


def _log_predict(theta, lx):
    return np.log(_curve(theta, lx)[0])


def _resid(theta, lx, ly, sw):
    return sw * (_log_predict(theta, lx) - ly)


def _jac(theta, lx, ly, sw):
    e, v, lbeta, c, a = theta
    L, lw, lbw = _curve(theta, lx)
    w, bw = np.exp(lw), np.exp(lbw)
    # g(w) = log w - a log(b - w) - lbeta - c lx = 0 ;  dw/dp = -(dg/dp) / (dg/dw)
    dgdw = 1.0 / w + a / bw
    J = np.empty((len(lx), 5))
    J[:, 0] = np.exp(e)                                     # dL/de
    J[:, 1] = (a / bw) / dgdw * np.exp(v)                   # dw/db * b
    J[:, 2] = 1.0 / dgdw                                    # dw/dlbeta
    J[:, 3] = lx / dgdw                                     # dw/dc
    J[:, 4] = lbw / dgdw                                    # dw/da
    return J * (sw / L)[:, None]


def _bounds(ly):
    lo = np.array([ly.min() - 20.0, ly.max() - 12.0, -60.0, C_MIN, 0.0])
    hi = np.array([ly.min(), ly.max() + 8.0, 60.0, 0.0, 10.0])
    return lo, hi


def _ls(theta0, lx, ly, w, tol=1e-10, max_nfev=300):
    return sc.soft_l1_least_squares(_resid, _jac, theta0, _bounds(ly), (lx, ly, np.sqrt(w)), F_SCALE, tol, max_nfev)


def _reference_starts(lx, y):
    """Stage 1: the reference estimator's least-squares step on an (E, L0) grid."""
    ymin, ymax = float(y.min()), float(y.max())
    rng = max(ymax - ymin, 1e-3 * ymax)
    starts = []
    for fe in [0.02, 0.3, 0.6, 0.85, 0.97, 0.999]:
        for fl in [0.01, 0.1, 0.5, 2.0, 10.0]:
            E, L0 = fe * ymin, ymax + fl * rng
            A = np.column_stack([np.ones_like(lx), lx, np.log(L0 - y)])
            res = lsq_linear(A, np.log(y - E), bounds=([-np.inf, -np.inf, 0.0], [np.inf, 0.0, np.inf]),
                             method="bvls")
            lbeta, c, a = res.x
            starts.append(np.array([np.log(E), np.log(L0 - E), lbeta, c, a]))
    return starts


def _rho(r):
    return 2.0 * F_SCALE ** 2 * (np.sqrt(1.0 + (r / F_SCALE) ** 2) - 1.0)


def fit(LX, ly, w=None):
    lx = LX[:, 0]
    if w is None:
        w = np.ones_like(ly)
    lo, hi = _bounds(ly)
    starts = [np.clip(s, lo, hi) for s in _reference_starts(lx, np.exp(ly))]
    vals = [np.sum(w * _rho(_log_predict(s, lx) - ly)) for s in starts]
    order = np.argsort(vals, kind="stable")[:N_REFINE]
    return sc.best_refinement((starts[i] for i in order), lambda th0: _ls(th0, lx, ly, w), tol=1e-15)


def _check(theta, LX, ly):
    lx = LX[:, 0]
    reason = sc.exponent_at_bound([float(-theta[3])], 0.0, -C_MIN)
    if reason:
        return reason
    L, lw, _ = _curve(theta, lx)
    share = np.exp(lw) / L
    return sc.vanished([float(share[np.argmax(lx)])])


LAW = sc.Law(name="M4", fit=fit, refit=lambda th, LX, ly, w: _ls(th, LX[:, 0], ly, w, tol=1e-8, max_nfev=60)[0],
             log_predict=lambda th, LX: _log_predict(th, LX[:, 0]), exponents=lambda th: [float(-th[3])],
             check=_check)


def predict(problem):
    # one variable: this law, then approach 3; two (N, D): approach 3 (no separate N and D exponents here)
    return sc.predict("scaling-m4", problem, lambda names: [LAW, a3.LAW] if len(names) == 1 else [a3.LAW], K)
