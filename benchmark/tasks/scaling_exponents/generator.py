"""Instances of scaling-exponents: loss observations at small scale, losses to predict at large scale.

Family A plants a law (laws.py) and adds realistic noise (a broken power law or M4 law is an error
rate, in [0, 1], in half the draws); family B trains small models (numpy) whose
exponents theory predicts; family C is the published Chinchilla data. Every instance is a pure
function of its parameters and seed (float64 numpy). The losses of family B and the reference
predictions pass through BLAS/LAPACK or an optimiser and are rounded to 9 significant digits, so
that the stored bytes do not depend on the last bits of a BLAS kernel.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import zeta
from threadpoolctl import threadpool_limits

from . import laws

__all__ = ["Instance", "make_instance", "load_chinchilla", "CHINCHILLA_CSV", "C_SPLIT_FLOP", "KINDS",
           "rf_curve", "variance_limited_losses", "sparse_parity_losses"]

CHINCHILLA_CSV = Path(__file__).resolve().parent / "data" / "chinchilla_epoch_extracted.csv"
C_SPLIT_FLOP = 10 ** 20.5
VARS = ("N", "D", "C", "step")
# lower end (log10) of the fit range of a single-variable law, per variable
_X_MIN_LOG10 = {"N": (6.0, 7.5), "D": (8.0, 9.0), "C": (17.0, 18.0)}


@dataclass
class Instance:
    variables: list[str]
    obs: dict[str, np.ndarray]          # variable -> (k,)
    obs_loss: np.ndarray
    obs_run: np.ndarray
    query: dict[str, np.ndarray]        # variable -> (q,)
    query_loss: np.ndarray
    exponents: dict[str, float]         # requested exponent -> truth
    info: dict[str, Any] = field(default_factory=dict)


def _round(x: np.ndarray, digits: int = 9) -> np.ndarray:
    return np.array([float(f"{v:.{digits}g}") for v in np.asarray(x, dtype=np.float64)], dtype=np.float64)


def _noisy(rng: np.random.Generator, clean: np.ndarray, runs: np.ndarray, sigma: float,
           outlier_frac: float) -> np.ndarray:
    """Log-normal point noise, a per-run offset of the same size (seed variance), and outliers
    (mostly upward: a bad seed or a loss spike) multiplying the loss by exp(+-U(0.03, 0.15))."""
    n_runs = int(runs.max()) + 1
    offset = sigma * rng.standard_normal(n_runs)
    log_noise = sigma * rng.standard_normal(clean.size) + offset[runs]
    if outlier_frac > 0:
        out = rng.random(clean.size) < outlier_frac
        sign = np.where(rng.random(clean.size) < 0.8, 1.0, -1.0)
        log_noise = log_noise + out * sign * rng.uniform(0.03, 0.15, size=clean.size)
    return clean * np.exp(log_noise)


# --- family A: planted laws -------------------------------------------------------------------

def _chinchilla(rng: np.random.Generator, p: dict[str, Any]) -> Instance:
    e = rng.uniform(1.5, 3.0)
    alpha, beta = rng.uniform(0.2, 0.8, size=2)
    fit_dec, q_dec = p["fit_decades"], p["query_decades"]
    n_min = 10 ** rng.uniform(6.5, 7.5)
    ratios = np.logspace(math.log10(5.0), math.log10(200.0), 5)       # tokens per parameter
    a = rng.uniform(0.5, 2.0) * n_min ** alpha                          # reducible N term 0.5-2 at n_min
    b = rng.uniform(0.5, 2.0) * (5.0 * n_min) ** beta
    sizes = n_min * np.logspace(0, fit_dec, 6)
    n_seeds = p.get("seeds", 1)
    obs_n = np.repeat(sizes, ratios.size * n_seeds)
    obs_d = obs_n * np.tile(np.repeat(ratios, n_seeds), sizes.size)
    runs = np.arange(obs_n.size)
    obs_loss = _noisy(rng, laws.chinchilla(obs_n, obs_d, e, a, b, alpha, beta), runs, p["noise"], 0.02)
    q_sizes = sizes[-1] * np.logspace(q_dec / 4, q_dec, 4)
    q_ratios = np.array([10.0, 20.0, 40.0])
    q_n = np.repeat(q_sizes, q_ratios.size)
    q_d = q_n * np.tile(q_ratios, q_sizes.size)
    q_loss = _noisy(rng, laws.chinchilla(q_n, q_d, e, a, b, alpha, beta), np.arange(q_n.size), p["noise"], 0.0)
    return Instance(["N", "D"], {"N": obs_n, "D": obs_d}, obs_loss, runs, {"N": q_n, "D": q_d}, q_loss,
                    {"alpha": float(alpha), "beta": float(beta)},
                    {"law": "chinchilla", "E": e, "A": a, "B": b, "alpha": alpha, "beta": beta})


def _single_variable_design(rng: np.random.Generator, p: dict[str, Any]):
    var = p.get("variable") or str(rng.choice(["N", "D", "C"]))
    lo, hi = _X_MIN_LOG10[var]
    x_min = 10 ** rng.uniform(lo, hi)
    fit_dec, q_dec = p["fit_decades"], p["query_decades"]
    n_seeds = p.get("seeds", 2)
    xs = x_min * np.logspace(0, fit_dec, 10)
    obs_x = np.tile(xs, n_seeds)
    seed_of = np.repeat(np.arange(n_seeds), xs.size)
    # training tokens: each seed is one run evaluated at every checkpoint; N or C: each point is a run
    runs = seed_of if var == "D" else np.arange(obs_x.size)
    q_x = xs[-1] * np.logspace(q_dec / 5, q_dec, 5)
    return var, x_min, xs, obs_x, runs, q_x


def _single(rng, p, var, obs_x, runs, q_x, law, truth_alpha, info) -> Instance:
    obs_loss = _noisy(rng, law(obs_x), runs, p["noise"], 0.02)
    q_loss = _noisy(rng, law(q_x), np.arange(q_x.size), p["noise"], 0.0)
    if p.get("rate"):  # an error rate never exceeds 1, whatever the noise (an upward outlier near 0.9)
        obs_loss, q_loss = np.minimum(obs_loss, 1.0), np.minimum(q_loss, 1.0)
    info = {**info, "rate": bool(p.get("rate", False))}
    return Instance([var], {var: obs_x}, obs_loss, runs, {var: q_x}, q_loss, {"alpha": float(truth_alpha)}, info)


def _bnsl(rng: np.random.Generator, p: dict[str, Any]) -> Instance:
    var, x_min, xs, obs_x, runs, q_x = _single_variable_design(rng, p)
    # an error rate: floor 2-20% and at most 3x that at x_min (below 0.6); else a loss floor 1.5-3
    a = rng.uniform(0.02, 0.2) if p.get("rate") else rng.uniform(1.5, 3.0)
    n_breaks = p["n_breaks"]
    while True:
        c0 = rng.uniform(0.05, 0.4)
        cs = rng.uniform(0.1, 0.4, size=n_breaks)
        if c0 + cs.sum() <= 1.0:
            break
    # breaks inside the fit range (at 20-45% and 55-70% of its decades), sharpness f in [0.1, 0.3]
    fracs = [rng.uniform(0.2, 0.45), rng.uniform(0.55, 0.7)] if n_breaks == 2 else [rng.uniform(0.25, 0.6)]
    breaks = [(float(c), float(x_min * 10 ** (fr * p["fit_decades"])), float(rng.uniform(0.1, 0.3)))
              for c, fr in zip(cs, fracs)]
    ratio = rng.uniform(0.5, 2.0)                       # reducible / irreducible at x_min
    b = ratio * a / (laws.bnsl(np.array([x_min]), 0.0, 1.0, c0, breaks)[0])
    alpha = c0 + cs.sum()
    return _single(rng, p, var, obs_x, runs, q_x, lambda x: laws.bnsl(x, a, b, c0, breaks), alpha,
                   {"law": "bnsl", "a": a, "b": b, "c0": c0, "breaks": breaks, "alpha": alpha})


def _m4(rng: np.random.Generator, p: dict[str, Any]) -> Instance:
    var, x_min, xs, obs_x, runs, q_x = _single_variable_design(rng, p)
    if p.get("rate"):  # an error rate: floor 2-20%, L0 the chance error of 2 to 20 classes
        e = rng.uniform(0.02, 0.2)
        l0 = rng.uniform(0.5, 0.95)
    else:
        e = rng.uniform(1.5, 3.0)
        l0 = e + rng.uniform(2.0, 5.0)
    a_m4 = rng.uniform(0.3, 1.5)
    c = -rng.uniform(0.2, 0.8)
    u = rng.uniform(0.3, 0.7)                           # (L - E) / (L0 - E) at x_min
    l_min = e + u * (l0 - e)
    beta = (l_min - e) / (l0 - l_min) ** a_m4 / x_min ** c
    return _single(rng, p, var, obs_x, runs, q_x, lambda x: laws.m4(x, e, l0, a_m4, beta, c), -c,
                   {"law": "m4", "E": e, "L0": l0, "a": a_m4, "beta": beta, "c": c, "alpha": -c})


# --- family B: small training runs ------------------------------------------------------------

def rf_curve(rng: np.random.Generator, n_max: int, m: int, a: float, b: float) -> np.ndarray:
    """Linear random-feature regression (Maloney, Roberts & Sully 2022; Bordelon et al. 2024).

    Latent x ~ N(0, diag(k^-b)), k = 1..m; target y = w.x with target power lambda_k w_k^2 = k^-a;
    model f(x) = theta . (F x) with N Gaussian random features F (the first N rows of one draw:
    one family of nested models). Trained to convergence on the population loss, its loss is the
    residual of projecting v = Lambda^(1/2) w onto the span of the columns of Lambda^(1/2) F^T,
    read for every N at once from one QR (the span of the first N columns is nested). The target
    power of the modes beyond m (the Hurwitz zeta tail) is added, so the curve approximates
    the infinite-dimensional system. Returns L(N) for N = 1..n_max. Model-limited exponent: a - 1.
    """
    k = np.arange(1, m + 1, dtype=np.float64)
    v = np.sqrt(k ** -a)
    f = rng.standard_normal((n_max, m))
    g = (f * np.sqrt(k ** -b)).T
    q, _ = np.linalg.qr(g)
    proj = q.T @ v
    return zeta(a, 1) - np.cumsum(proj * proj)


def _random_features(rng: np.random.Generator, p: dict[str, Any]) -> Instance:
    a_minus_1 = rng.uniform(0.4, 1.0)
    a = 1.0 + a_minus_1
    b = rng.uniform(1.3, 2.0)
    m = p.get("latent", 4096)
    fit_n = np.unique(np.round(np.logspace(math.log10(8), math.log10(128), 6)).astype(int))
    q_n = np.array([256, 512, 1024])
    curves = [rf_curve(rng, int(fit_n[-1]), m, a, b) for _ in range(p.get("seeds", 2))]
    big = rf_curve(rng, int(q_n[-1]), m, a, b)              # the large held-out runs: a fresh draw
    e = rng.uniform(0.5, 2.0) * big[-1]                     # label noise variance: the irreducible loss
    obs_n = np.concatenate([fit_n for _ in curves]).astype(np.float64)
    obs_loss = np.concatenate([c[fit_n - 1] for c in curves]) + e
    runs = np.arange(obs_n.size)
    return Instance(["N"], {"N": obs_n}, _round(obs_loss), runs, {"N": q_n.astype(np.float64)},
                    _round(big[q_n - 1] + e), {"alpha": float(a_minus_1)},
                    {"law": "random_features_model_limited", "a": a, "b": b, "latent": m, "E": e,
                     "alpha": a_minus_1})


def variance_limited_losses(rng: np.random.Generator, ds: np.ndarray, m: int, n_feat: int, a: float, b: float,
                            noise_var: float, f: np.ndarray) -> np.ndarray:
    """Ordinary least squares on D fresh samples with n_feat fixed random features of a latent with
    spectrum k^-b (target power k^-a, label noise); the exact population loss of each fit. For
    D >> N, L(D) - L(inf) ~ L(inf) N / D: the variance-limited exponent 1 (Bahri et al. 2024)."""
    k = np.arange(1, m + 1, dtype=np.float64)
    sd = np.sqrt(k ** -b)
    w = np.sqrt(k ** -a) / sd
    out = []
    for d in ds:
        gram = np.zeros((n_feat, n_feat))
        rhs = np.zeros(n_feat)
        for start in range(0, int(d), 16384):
            rows = min(16384, int(d) - start)
            x = rng.standard_normal((rows, m)) * sd
            y = x @ w + math.sqrt(noise_var) * rng.standard_normal(rows)
            z = x @ f.T
            gram += z.T @ z
            rhs += z.T @ y
        theta = np.linalg.solve(gram, rhs)
        r = f.T @ theta - w
        out.append(float(np.sum(r * r * sd * sd) + noise_var))
    return np.array(out)


def _variance_limited(rng: np.random.Generator, p: dict[str, Any]) -> Instance:
    m, n_feat = 128, 24
    a, b = 1.0 + rng.uniform(0.4, 1.0), rng.uniform(1.3, 2.0)
    noise_var = rng.uniform(0.05, 0.2)
    f = rng.standard_normal((n_feat, m))
    fit_d = np.round(n_feat * np.logspace(math.log10(4), math.log10(64), 6)).astype(int)
    q_d = np.round(fit_d[-1] * np.logspace(0.5, 1.5, 3)).astype(int)
    n_seeds = p.get("seeds", 4)
    obs_d = np.tile(fit_d, n_seeds)
    obs_loss = variance_limited_losses(rng, obs_d, m, n_feat, a, b, noise_var, f)
    q_loss = variance_limited_losses(rng, q_d, m, n_feat, a, b, noise_var, f)
    return Instance(["D"], {"D": obs_d.astype(np.float64)}, _round(obs_loss), np.arange(obs_d.size),
                    # alpha = 1 is the theory's value for every instance of this law: not asked, since the
                    # public variable (D, in family B) would give it away
                    {"D": q_d.astype(np.float64)}, _round(q_loss), {},
                    {"law": "variance_limited", "a": a, "b": b, "latent": m, "features": n_feat,
                     "noise_var": noise_var, "alpha": 1.0})


def sparse_parity_losses(rng: np.random.Generator, checkpoints: np.ndarray, n_tasks: int = 24, n_bits: int = 10,
                         k: int = 3, width: int = 128, zipf: float = 0.6, batch: int = 64,
                         lr: float = 3e-3) -> np.ndarray:
    """A reduced multitask sparse parity (Michaud et al. 2023): task i (one-hot control bits) asks
    for the parity of its own k of n_bits bits; tasks are drawn with probability ~ i^-(1+zipf).
    A one-hidden-layer ReLU MLP trained with Adam (numpy, manual backprop); returns the
    task-weighted test cross-entropy at the checkpoints (steps). The quantization model predicts
    L ~ steps^-(zipf/(1+zipf)) only roughly, so the exponent is not scored."""
    subsets = np.array([rng.choice(n_bits, size=k, replace=False) for _ in range(n_tasks)])
    prob = np.arange(1, n_tasks + 1, dtype=np.float64) ** -(1 + zipf)
    prob /= prob.sum()
    din = n_tasks + n_bits
    params = [rng.standard_normal((din, width)) * math.sqrt(2 / din), np.zeros(width),
              rng.standard_normal((width, 2)) * math.sqrt(1 / width), np.zeros(2)]
    mom = [np.zeros_like(q) for q in params]
    var = [np.zeros_like(q) for q in params]
    eye = np.eye(n_tasks)

    def make(tasks, bits):
        x = np.concatenate([eye[tasks], bits], axis=1)
        y = (bits[np.arange(tasks.size)[:, None], subsets[tasks]].sum(1) % 2).astype(np.int64)
        return x, y

    n_test = 256
    xt, yt = make(np.repeat(np.arange(n_tasks), n_test), rng.integers(0, 2, size=(n_tasks * n_test, n_bits)).astype(float))

    def test_loss():
        w1, b1, w2, b2 = params
        z = np.maximum(xt @ w1 + b1, 0) @ w2 + b2
        ce = np.logaddexp(z[:, 0], z[:, 1]) - z[np.arange(yt.size), yt]
        return float(np.sum(ce.reshape(n_tasks, n_test).mean(1) * prob))

    wanted = {int(s) for s in checkpoints}
    out = {}
    for step in range(1, int(max(wanted)) + 1):
        w1, b1, w2, b2 = params
        x, y = make(rng.choice(n_tasks, size=batch, p=prob), rng.integers(0, 2, size=(batch, n_bits)).astype(float))
        h = np.maximum(x @ w1 + b1, 0)
        z = h @ w2 + b2
        z = z - z.max(1, keepdims=True)
        g = np.exp(z)
        g /= g.sum(1, keepdims=True)
        g[np.arange(batch), y] -= 1
        g /= batch
        gh = g @ w2.T
        gh[h <= 0] = 0
        grads = (x.T @ gh, gh.sum(0), h.T @ g, g.sum(0))
        for i, gr in enumerate(grads):
            mom[i] = 0.9 * mom[i] + 0.1 * gr
            var[i] = 0.999 * var[i] + 0.001 * gr * gr
            params[i] -= lr * (mom[i] / (1 - 0.9 ** step)) / (np.sqrt(var[i] / (1 - 0.999 ** step)) + 1e-8)
        if step in wanted:
            out[step] = test_loss()
    return np.array([out[int(s)] for s in checkpoints])


def _sparse_parity(rng: np.random.Generator, p: dict[str, Any]) -> Instance:
    zipf = rng.uniform(0.4, 0.8)
    steps = np.unique(np.round(np.logspace(2, 4, 13)).astype(int))
    fit, query = steps[steps <= 1000], steps[steps > 1000]
    n_seeds = p.get("seeds", 1)
    obs_loss, obs_steps, runs, q_loss = [], [], [], None
    for s in range(n_seeds):
        curve = sparse_parity_losses(rng, steps if s == 0 else fit, zipf=zipf)
        obs_loss.append(curve[: fit.size])
        obs_steps.append(fit)
        runs.append(np.full(fit.size, s))
        if s == 0:
            q_loss = curve[fit.size:]       # the same runs, trained on: the held-out checkpoints
    assert q_loss is not None, "the first seed's curve holds the held-out checkpoints"
    return Instance(["step"], {"step": np.concatenate(obs_steps).astype(np.float64)}, _round(np.concatenate(obs_loss)),
                    np.concatenate(runs), {"step": query.astype(np.float64)}, _round(q_loss), {},
                    {"law": "sparse_parity", "zipf": zipf, "approx_alpha": zipf / (1 + zipf)})


# --- family C: published data -----------------------------------------------------------------

def load_chinchilla() -> dict[str, np.ndarray]:
    with open(CHINCHILLA_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    return {"N": n, "C": c, "D": c / (6.0 * n), "loss": loss}


def _published(rng: np.random.Generator, p: dict[str, Any]) -> Instance:
    data = load_chinchilla()
    fit = data["C"] < C_SPLIT_FLOP
    return Instance(["N", "D"], {"N": data["N"][fit], "D": data["D"][fit]}, data["loss"][fit], np.arange(int(fit.sum())),
                    {"N": data["N"][~fit], "D": data["D"][~fit]}, data["loss"][~fit], {},
                    {"law": "chinchilla_published", "split_flop": "10^20.5"})


KINDS = {
    "chinchilla": _chinchilla, "bnsl": _bnsl, "m4": _m4,
    "random_features": _random_features, "variance_limited": _variance_limited, "sparse_parity": _sparse_parity,
    "published": _published,
}


def make_instance(params: dict[str, Any], seed: int) -> Instance:
    with threadpool_limits(limits=1):  # one BLAS thread: a fixed reduction order (and faster on small arrays)
        return KINDS[params["kind"]](np.random.default_rng(seed), params)
