"""Adaptive multilevel splitting (Webb et al. 2019) with its asymptotic log-normal bound."""
from __future__ import annotations

import math

import numpy as np
from phasebench_baselines.rare import Inputs, Model, answer, posterior_median


class _Mover:
    """MCMC moves that leave the input distribution restricted to {margin > level} invariant:
    preconditioned Crank-Nicolson (Gaussian), a reflecting-free random walk rejected outside the
    box (uniform), or resampling one position from its own distribution (tokens)."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.step = 0.5 if inputs.kind == "gaussian" else 0.2

    def propose(self, x, rng):
        if self.inputs.kind == "gaussian":
            return math.sqrt(1 - self.step ** 2) * x + self.step * rng.standard_normal(x.shape)
        if self.inputs.kind == "box":
            return x + self.step * rng.standard_normal(x.shape)
        y = x.copy()
        pos = rng.integers(self.inputs.length, size=len(x))
        for j in range(self.inputs.length):
            sel = pos == j
            y[sel, j] = rng.choice(self.inputs.vocab, size=int(sel.sum()), p=self.inputs.probs[j])
        return y

    def adapt(self, acceptance):
        if self.inputs.kind != "tokens":
            self.step = float(np.clip(self.step * (1.3 if acceptance > 0.3 else 0.7), 1e-4, 0.99))


def adaptive_multilevel_splitting(problem, kill=0.5, mcmc_steps=5, z=1.6448536269514722):
    """Fixed-fraction AMS (Webb et al. 2019): kill the lower half of the particles, clone the
    survivors, decorrelate the clones with MCMC constrained above the level. Bound: the
    estimator's asymptotic log-normal interval, log p_hat +- z sqrt(sum (1 - f_k) / (f_k N)):
    not a guaranteed one (the coverage metric shows how it fares)."""
    rng = np.random.default_rng(problem["seed"])
    model, inputs = Model(problem), Inputs(problem)
    mover = _Mover(inputs)
    n = max(8, model.remaining // (1 + 20 * mcmc_steps))
    x = inputs.sample(n, rng)
    s = model.margins(x)
    log_p, rel_var = 0.0, 0.0
    while True:
        level = float(np.quantile(s, kill))
        if level >= 0:
            break
        alive = np.flatnonzero(s > level)
        if alive.size == 0:
            break
        f = alive.size / n
        dead = np.flatnonzero(s <= level)
        if model.remaining < dead.size * mcmc_steps:
            break  # out of budget before the target: report what the levels so far support
        log_p += math.log(f)
        rel_var += (1 - f) / (f * n)
        src = rng.choice(alive, size=dead.size)
        x[dead], s[dead] = x[src], s[src]
        for _ in range(mcmc_steps):
            y = mover.propose(x[dead], rng)
            ok = np.ones(len(y), dtype=bool)
            if inputs.kind == "box":
                ok = np.all(np.abs(y) <= 1.0, axis=1)
            sy = np.full(len(y), -np.inf)
            sy[ok] = model.margins(y[ok]) if ok.any() else sy[ok]
            acc = sy > level
            x[dead[acc]], s[dead[acc]] = y[acc], sy[acc]
            mover.adapt(float(acc.mean()))
    frac = float(np.mean(s > 0))
    level_p = math.exp(log_p)
    if frac > 0:
        rel_var += (1 - frac) / (frac * n)
    spread = math.exp(z * math.sqrt(rel_var))
    p_hat = level_p * frac
    upper = (p_hat if frac > 0 else level_p / n) * spread
    if frac == 0:
        # no particle past 0 at the last level: the particles are draws of f above it, of mass level_p
        p_hat = posterior_median(0, n, scale=level_p)
    return answer(p_hat, upper)


def estimate(problem):
    return adaptive_multilevel_splitting(problem)
