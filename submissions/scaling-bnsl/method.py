"""Broken neural scaling law with one break (Caballero et al. 2023) for scaling-exponents.

One varying variable x (N, D, C or step):
    L = a + b x^-c0 (1 + (x/d1)^(1/f1))^(-c1 f1)
fitted in log space: with x normalised by its geometric mean, la = log a, lb = log b, ld = log d1,
lf = log f1,
    log L_hat = logaddexp(la, lb - c0 log x - c1 f1 softplus((log x - ld) / f1)),
minimising the soft-L1 robust loss (scale 1e-3) of log L_hat - log L with scipy's trust-region
least squares (analytic Jacobian) from the best 16 points of a start grid (c0 in {0, .3, .7},
c1 in {-.3, 0, .3, .7}, the break at the 20/50/80% quantiles of log x, f1 in {.1, .5, 1}, a at
1/50/80/95% of the smallest loss, b on a grid around the loss scale). Bounds: c0 in [0, 4],
c1 in [-2, 4], the break inside the observed range of x (a break beyond the data cannot be
identified from it), f1 in [0.02, 5], a below 1.05 x the smallest loss. The asymptotic exponent
reported is alpha = c0 + c1. 90% interval: run-clustered bootstrap refits plus resampled residuals.

Two varying variables (N, D): falls back to Chinchilla approach 3 (bnsl_approach3.py, a copy of the
scaling-approach3 baseline), since the one-variable BNSL does not give separate N and D exponents.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit

import bnsl_approach3 as a3

try:  # shipped with scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

F_SCALE = 1e-3
N_REFINE = 16
N_BOOT = 30


def _parts(theta, lx):
    la, lb, c0, c1, ld, lf = theta
    f = np.exp(lf)
    z = (lx - ld) / f
    sp = np.logaddexp(0.0, z)
    r = lb - c0 * lx - c1 * f * sp
    return la, r, f, z, sp


def log_predict(theta, lx):
    la, r, *_ = _parts(theta, lx)
    return np.logaddexp(la, r)


def _resid(theta, lx, ly, sw):
    return sw * (log_predict(theta, lx) - ly)


def _jac(theta, lx, ly, sw):
    la, r, f, z, sp = _parts(theta, lx)
    c1, ld = theta[3], theta[4]
    pa = expit(la - r)
    pr = 1.0 - pa
    sig = expit(z)
    J = np.empty((len(lx), 6))
    J[:, 0] = pa
    J[:, 1] = pr
    J[:, 2] = -lx * pr
    J[:, 3] = -f * sp * pr
    J[:, 4] = c1 * sig * pr
    J[:, 5] = -c1 * f * (sp - sig * z) * pr
    return J * sw[:, None]


def _bounds(lx, ly):
    lo = [ly.min() - 25.0, -60.0, 0.0, -2.0, lx.min() - 0.5, np.log(0.02)]
    hi = [ly.min() + np.log(1.05), 60.0, 4.0, 4.0, lx.max(), np.log(5.0)]
    return np.array(lo), np.array(hi)


def _grid(lx, ly):
    y = np.exp(ly)
    la = ly.min() + np.log([0.01, 0.5, 0.8, 0.95])
    span = np.log(max(y.max() - 0.5 * y.min(), 1e-12))
    lb = span + np.array([-3.0, -1.5, -0.5, 0.5])
    c0 = [0.0, 0.3, 0.7]
    c1 = [-0.3, 0.0, 0.3, 0.7]
    ld = list(np.quantile(lx, [0.2, 0.5, 0.8]))
    lf = list(np.log([0.1, 0.5, 1.0]))
    mesh = np.meshgrid(la, lb, c0, c1, ld, lf, indexing="ij")
    return np.column_stack([m.ravel() for m in mesh])


def _rho(r):
    # soft-L1 with scale F_SCALE (as scipy's least_squares uses it), summed
    z = (r / F_SCALE) ** 2
    return F_SCALE ** 2 * 2.0 * (np.sqrt(1.0 + z) - 1.0)


def _grid_objective(G, lx, ly, w, chunk=256):
    out = np.empty(len(G))
    for s in range(0, len(G), chunk):
        g = G[s:s + chunk]
        f = np.exp(g[:, 5, None])
        z = (lx[None, :] - g[:, 4, None]) / f
        r = g[:, 1, None] - g[:, 2, None] * lx[None, :] - g[:, 3, None] * f * np.logaddexp(0.0, z)
        lp = np.logaddexp(g[:, 0, None], r)
        out[s:s + chunk] = (_rho(lp - ly[None, :]) * w[None, :]).sum(1)
    return out


def _ls(theta0, lx, ly, w, lo, hi, tol=1e-10, max_nfev=400):
    sw = np.sqrt(w)
    th0 = np.clip(theta0, lo + 1e-9, hi - 1e-9)
    res = least_squares(_resid, th0, jac=_jac, bounds=(lo, hi), args=(lx, ly, sw),
                        loss="soft_l1", f_scale=F_SCALE, method="trf",
                        xtol=tol, ftol=tol, gtol=tol, max_nfev=max_nfev)
    return res.x, float(res.cost)


def fit(lx, ly, w=None):
    if w is None:
        w = np.ones_like(ly)
    lo, hi = _bounds(lx, ly)
    G = np.clip(_grid(lx, ly), lo, hi)
    order = np.argsort(_grid_objective(G, lx, ly, w), kind="stable")[:N_REFINE]
    best, best_f = None, np.inf
    for i in order:
        th, f = _ls(G[i], lx, ly, w, lo, hi)
        if f < best_f - 1e-15:
            best, best_f = th, f
    return best


def _predict(problem):
    names, X, y, run, Q = a3.parse_problem(problem)
    if X.shape[1] != 1:
        out = a3.fit_predict(problem)
        out.pop("_theta", None)
        return out
    rng = np.random.default_rng(int(problem.get("seed", 0)))
    lx, lq, ly = np.log(X[:, 0]), np.log(Q[:, 0]), np.log(y)
    shift = lx.mean()
    lx, lq = lx - shift, lq - shift
    theta = fit(lx, ly)
    pred = a3.safe_loss(np.exp(log_predict(theta, lq)), y)
    out = {"loss": pred, "alpha": float(theta[2] + theta[3])}
    # interval: run-clustered bootstrap, warm-started refits, plus resampled log residuals
    lo_b, hi_b = _bounds(lx, ly)
    resid = ly - log_predict(theta, lx)
    runs, inv = np.unique(run, return_inverse=True)
    preds = np.empty((N_BOOT, len(lq)))
    for b in range(N_BOOT):
        counts = np.bincount(rng.integers(0, len(runs), len(runs)), minlength=len(runs))
        w = counts[inv].astype(float)
        if (w > 0).sum() < 8:
            w = np.ones_like(ly)
        th, _ = _ls(theta, lx, ly, w, lo_b, hi_b, tol=1e-8, max_nfev=60)
        preds[b] = log_predict(th, lq)
    sims = preds + rng.choice(resid, size=preds.shape, replace=True)
    lo, hi = np.exp(np.quantile(sims, 0.05, axis=0)), np.exp(np.quantile(sims, 0.95, axis=0))
    out["loss_low"] = a3.safe_loss(np.minimum(lo, pred), y)
    out["loss_high"] = a3.safe_loss(np.maximum(hi, pred), y)
    return out


def predict(problem):
    # one BLAS thread: the arrays are tiny and idle BLAS threads only cost time on a shared core
    if threadpool_limits is None:
        return _predict(problem)
    with threadpool_limits(limits=1):
        return _predict(problem)
