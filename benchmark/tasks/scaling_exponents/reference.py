"""The approach-3 reference fit (Hoffmann et al. 2022, section 3.3; Besiroglu et al. 2024).

Two variables: L = E + A / N^alpha + B / D^beta. One variable x: L = E + A / x^alpha. Parameters are
fitted in log space (e = ln E, a = ln A, b = ln B) by minimising the Huber loss (delta = 1e-3) of
ln L_hat - ln L, where ln L_hat = LSE(a - alpha ln N, b - beta ln D, e). The objective is evaluated
on the grid of starting points of Hoffmann et al. (e in {-1, -.5, 0, .5, 1}, a and b in
{0, 5, ..., 25}, alpha and beta in {0, .5, ..., 2}); L-BFGS-B is run from the ``n_starts`` best grid
points (rather than from all 4,500, to keep the build fast) and the lowest final objective wins.
Exponents are bounded to [0, 5] and ln E below by ln(min loss) - 10. Everything is float64 numpy/scipy: deterministic on a platform.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

__all__ = ["Approach3Fit", "fit_approach3", "DELTA"]

DELTA = 1e-3
_E_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)
_A_GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
_ALPHA_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)


@dataclass
class Approach3Fit:
    e: float                 # ln E
    log_coef: np.ndarray     # ln A (, ln B)
    exponents: np.ndarray    # alpha (, beta)
    objective: float

    @property
    def params(self) -> dict[str, float]:
        out = {"E": float(np.exp(self.e))}
        for j, name in enumerate(("A", "B")[: self.exponents.size]):
            out[name] = float(np.exp(self.log_coef[j]))
            out[("alpha", "beta")[j]] = float(self.exponents[j])
        return out

    def predict(self, *xs: np.ndarray) -> np.ndarray:
        logs = np.stack([np.log(np.asarray(x, dtype=np.float64)) for x in xs], axis=-1)
        terms = self.log_coef - self.exponents * logs
        return np.exp(np.logaddexp(self.e, logsumexp(terms, axis=-1)))


def _huber(r: np.ndarray) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= DELTA, 0.5 * r * r, DELTA * (a - 0.5 * DELTA)) / DELTA


def _unpack(theta: np.ndarray, k: int) -> tuple[float, np.ndarray, np.ndarray]:
    return theta[0], theta[1: 1 + k], theta[1 + k: 1 + 2 * k]


def _objective(theta: np.ndarray, logs: np.ndarray, log_loss: np.ndarray) -> tuple[float, np.ndarray]:
    k = logs.shape[1]
    e, a, al = _unpack(theta, k)
    terms = np.concatenate([np.full((logs.shape[0], 1), e), a - al * logs], axis=1)
    lse = logsumexp(terms, axis=1)
    w = np.exp(terms - lse[:, None])
    r = lse - log_loss
    g = np.clip(r, -DELTA, DELTA) / DELTA
    grad = np.concatenate([[np.sum(g * w[:, 0])], (g[:, None] * w[:, 1:]).sum(0),
                           -(g[:, None] * w[:, 1:] * logs).sum(0)])
    return float(np.sum(_huber(r))), grad


def fit_approach3(xs: list[np.ndarray], loss: np.ndarray, n_starts: int = 8) -> Approach3Fit:
    """Fit on observations ``xs`` (one array per variable: [N, D] or [x]) and losses ``loss``."""
    # one BLAS thread: L-BFGS-B calls BLAS on tiny vectors, where threads only cost (10x or more)
    with threadpool_limits(limits=1):
        return _fit(xs, loss, n_starts)


def _fit(xs: list[np.ndarray], loss: np.ndarray, n_starts: int) -> Approach3Fit:
    logs = np.stack([np.log(np.asarray(x, dtype=np.float64)) for x in xs], axis=1)
    log_loss = np.log(np.asarray(loss, dtype=np.float64))
    k = logs.shape[1]
    grid = np.array([[e, *a, *al] for e in _E_GRID for a in itertools.product(_A_GRID, repeat=k)
                     for al in itertools.product(_ALPHA_GRID, repeat=k)], dtype=np.float64)
    # objective at every grid point, vectorised: (starts, points)
    e, a, al = grid[:, :1], grid[:, 1: 1 + k], grid[:, 1 + k:]
    terms = a[:, None, :] - al[:, None, :] * logs[None, :, :]
    lse = np.logaddexp(e, logsumexp(terms, axis=2))
    obj = _huber(lse - log_loss[None, :]).sum(axis=1)
    order = np.argsort(obj, kind="stable")[:n_starts]
    # ln E >= ln(min loss) - 10: where the best fit sends E to 0 the optimiser stops there instead
    # of walking ln E towards -inf (the predictions differ by less than e^-10 of the loss)
    bounds = [(float(log_loss.min()) - 10.0, None)] + [(None, None)] * k + [(0.0, 5.0)] * k
    best = None
    for idx in order:
        res = minimize(_objective, grid[idx], args=(logs, log_loss), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-7})
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None, "the start grid is not empty"
    e, a, al = _unpack(best.x, k)
    return Approach3Fit(e=float(e), log_coef=np.array(a), exponents=np.array(al), objective=float(best.fun))
