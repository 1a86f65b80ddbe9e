"""Log-log least squares baseline for scaling-exponents.

log L = c0 - sum_j s_j log x_j, fitted by ordinary least squares on all observations (one
regressor per varying variable: log N and log D jointly for the two-variable instances, the single
varying variable otherwise). Queries are predicted by extrapolating the fitted plane/line; the
reported exponents are the negated slopes (alpha for the first variable, beta for the second). The
90% interval is the classical OLS prediction interval (Student t with k - p - 1 degrees of freedom),
in log space. No hyperparameters. Self-contained: numpy and scipy only.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

try:  # shipped with scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

_ALL_VARS = ("N", "D", "C", "step")


def _parse(problem):
    names = [v.strip() for v in str(problem.get("variables", "")).split(",") if v.strip()]
    if not names:
        names = [v for v in _ALL_VARS
                 if np.isfinite(np.asarray(problem.get("obs_" + v, [np.nan]), float)).all()
                 and np.ptp(np.asarray(problem["obs_" + v], float)) > 0]
    X = np.column_stack([np.asarray(problem["obs_" + v], dtype=float) for v in names])
    Q = np.column_stack([np.asarray(problem["query_" + v], dtype=float) for v in names])
    y = np.asarray(problem["obs_loss"], dtype=float)
    ok = np.isfinite(X).all(1) & (X > 0).all(1) & np.isfinite(y) & (y > 0)
    X, y = X[ok], y[ok]
    for j in range(X.shape[1]):
        bad = ~np.isfinite(Q[:, j]) | (Q[:, j] <= 0)
        Q[bad, j] = X[:, j].max()
    return names, X, y, Q


def _predict(problem):
    names, X, y, Q = _parse(problem)
    k, p = X.shape
    LX, LQ, ly = np.log(X), np.log(Q), np.log(y)
    mu = LX.mean(0)
    A = np.column_stack([np.ones(k), LX - mu])
    AQ = np.column_stack([np.ones(len(Q)), LQ - mu])
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    pred = AQ @ coef
    out = {"loss": np.exp(np.clip(pred, -50, 50))}
    for name, s in zip(["alpha", "beta"], coef[1:]):
        out[name] = float(-s)
    dof = max(k - p - 1, 1)
    resid = ly - A @ coef
    s2 = float(resid @ resid) / dof
    AtA_inv = np.linalg.pinv(A.T @ A)
    se = np.sqrt(s2 * (1.0 + np.einsum("ij,jk,ik->i", AQ, AtA_inv, AQ)))
    t = stats.t.ppf(0.95, dof)
    out["loss_low"] = np.exp(np.clip(pred - t * se, -50, 50))
    out["loss_high"] = np.exp(np.clip(pred + t * se, -50, 50))
    return out


def predict(problem):
    # one BLAS thread: the arrays are tiny and idle BLAS threads only cost time on a shared core
    if threadpool_limits is None:
        return _predict(problem)
    with threadpool_limits(limits=1):
        return _predict(problem)
