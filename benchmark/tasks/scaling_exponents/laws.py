"""The functional forms the synthetic family A plants.

* Chinchilla (Hoffmann et al. 2022): L = E + A / N^alpha + B / D^beta.
* Broken neural scaling law (Caballero et al. 2023):
  y = a + b x^(-c0) prod_i (1 + (x / d_i)^(1 / f_i))^(-c_i f_i); at large x the reducible part
  decays as x^-(c0 + sum_i c_i), the exponent this task calls alpha.
* M4 (Alabdulmohsin et al. 2022): (L - E) / (L0 - L)^a = beta x^c with c < 0 here; L decreases
  from L0 towards E and, at large x, L - E ~ beta (L0 - E)^a x^c, so alpha = -c.
"""
from __future__ import annotations

import numpy as np

__all__ = ["chinchilla", "bnsl", "m4", "power_law"]


def chinchilla(n: np.ndarray, d: np.ndarray, e: float, a: float, b: float, alpha: float, beta: float) -> np.ndarray:
    return e + a / np.power(n, alpha) + b / np.power(d, beta)


def power_law(x: np.ndarray, e: float, a: float, alpha: float) -> np.ndarray:
    return e + a / np.power(x, alpha)


def bnsl(x: np.ndarray, a: float, b: float, c0: float, breaks: list[tuple[float, float, float]]) -> np.ndarray:
    """``breaks``: (c_i, d_i, f_i) triples. Evaluated in log space so large x does not overflow."""
    x = np.asarray(x, dtype=np.float64)
    log_red = np.log(b) - c0 * np.log(x)
    for c, d, f in breaks:
        # log(1 + (x/d)^(1/f)) = logaddexp(0, log(x/d) / f)
        log_red = log_red - c * f * np.logaddexp(0.0, np.log(x / d) / f)
    return a + np.exp(log_red)


def m4(x: np.ndarray, e: float, l0: float, a: float, beta: float, c: float, iters: int = 200) -> np.ndarray:
    """Solve (L - E) = beta x^c (L0 - L)^a for L in (E, L0) by bisection (the left side minus the
    right is increasing in L, negative at E and positive at L0)."""
    x = np.asarray(x, dtype=np.float64)
    rhs = beta * np.power(x, c)
    lo = np.full(x.shape, e, dtype=np.float64)
    hi = np.full(x.shape, l0, dtype=np.float64)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        g = (mid - e) - rhs * np.power(l0 - mid, a)
        pos = g > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    return 0.5 * (lo + hi)
