"""Planted features in superposition: x = sum_i a_i f_i + noise, with sparse non-negative a.

Every instance is a pure function of its parameters and seed (float64 numpy and scipy.sparse, no
BLAS in the sample path), so that two builds on the same platform are byte-identical.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtri

__all__ = ["Planted", "clustered_features", "firing_probabilities", "plant", "random_features"]

_CHUNK = 8192  # rows per chunk where per-sample dense draws are needed (copula)


@dataclass
class Planted:
    samples: np.ndarray      # (N, d) float32
    features: np.ndarray     # (n, d) float64, unit rows
    signed: bool             # score with signed cosine (features read from a trained model)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.sum(m * m, axis=1, keepdims=True))
    return m / norms


def random_features(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return _unit_rows(rng.standard_normal((n, d)))


def clustered_features(rng: np.random.Generator, n: int, d: int, cluster_size: int,
                       cos_range: tuple[float, float]) -> np.ndarray:
    """Clusters of features around random centres; expected pairwise cosine inside a cluster
    is 1/(1+s^2) for spread s, drawn per cluster so that it falls in ``cos_range``."""
    rows = []
    for start in range(0, n, cluster_size):
        size = min(cluster_size, n - start)
        centre = _unit_rows(rng.standard_normal((1, d)))
        target = rng.uniform(*cos_range)
        spread = math.sqrt(1.0 / target - 1.0)
        rows.append(_unit_rows(centre + spread * rng.standard_normal((size, d)) / math.sqrt(d)))
    return np.concatenate(rows)[rng.permutation(n)]


def firing_probabilities(n: int, l0: float, law: str, exponent: float = 1.0) -> np.ndarray:
    """Per-feature firing probabilities summing to the mean L0 (capped at 1)."""
    idx = np.arange(n, dtype=float)
    if law == "uniform":
        w = np.ones(n)
    elif law == "decay":  # Sharkey et al. 2022: 0.99^i
        w = 0.99 ** idx
    elif law == "zipf":
        w = (idx + 1.0) ** (-exponent)
    else:
        raise ValueError(f"unknown frequency law {law!r}")
    p = w * (l0 / w.sum())
    for _ in range(50):  # redistribute mass clipped at 1 so the mean L0 is kept
        over = p > 1
        if not over.any():
            break
        excess = (p[over] - 1).sum()
        p[over] = 1
        p[~over] += excess * w[~over] / w[~over].sum()
    return np.minimum(p, 1.0)


def _independent_codes(rng, n_samples, probs):
    rows, cols = [], []
    for i, p in enumerate(probs):
        k = rng.binomial(n_samples, p)
        rows.append(rng.choice(n_samples, size=k, replace=False))
        cols.append(np.full(k, i))
    return np.concatenate(rows), np.concatenate(cols)


def _copula_codes(rng, n_samples, probs, rank, rho):
    """Correlated firing with the marginals kept: z = B u + sqrt(1-rho) e, fire if z < Phi^-1(p)."""
    n = probs.size
    b = rng.standard_normal((n, rank))
    b *= math.sqrt(rho) / np.sqrt(np.sum(b * b, axis=1, keepdims=True))
    thresholds = ndtri(probs)
    rows, cols = [], []
    for start in range(0, n_samples, _CHUNK):
        m = min(_CHUNK, n_samples - start)
        u = rng.standard_normal((m, rank))
        z = (u[:, None, :] * b[None, :, :]).sum(axis=2) + math.sqrt(1 - rho) * rng.standard_normal((m, n))
        r, c = np.nonzero(z < thresholds)
        rows.append(r + start)
        cols.append(c)
    return np.concatenate(rows), np.concatenate(cols)


def _hierarchy_codes(rng, n_samples, n_parents, n_children, p_parent, p_child_given_parent, n_loose=0):
    """Parents fire independently; with its parent, at most one of its children fires (the
    children are mutually exclusive and never fire alone: the feature-absorption trap). ``n_loose``
    more features fire independently at the parents' rate, so that n need not be a multiple of
    1 + n_children (which would tell the structure)."""
    rows, cols = [], []
    for j in range(n_loose):
        fired = np.flatnonzero(rng.random(n_samples) < p_parent)
        rows.append(fired)
        cols.append(np.full(fired.size, n_parents * (1 + n_children) + j))
    for j in range(n_parents):
        fired = np.flatnonzero(rng.random(n_samples) < p_parent)
        rows.append(fired)
        cols.append(np.full(fired.size, j))
        with_child = fired[rng.random(fired.size) < p_child_given_parent]
        child = rng.integers(0, n_children, size=with_child.size)
        rows.append(with_child)
        cols.append(n_parents + j * n_children + child)
    return np.concatenate(rows), np.concatenate(cols)


def _train_toy_model(seed: int, n: int, d: int, density: float, steps: int) -> np.ndarray:
    """Elhage et al. 2022 toy model of superposition: x' = ReLU(W^T W x + b); returns W (d, n)."""
    import torch

    torch.set_num_threads(1)  # one thread: a fixed reduction order, so the build is reproducible
    g = torch.Generator().manual_seed(seed % 2 ** 64)  # torch seeds are 64-bit; the split's seeds are 256
    w = torch.nn.Parameter(torch.randn(d, n, generator=g, dtype=torch.float64) * 0.1)
    b = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
    opt = torch.optim.Adam([w, b], lr=1e-2)
    for _ in range(steps):
        x = torch.rand(1024, n, generator=g, dtype=torch.float64)
        x = x * (torch.rand(1024, n, generator=g, dtype=torch.float64) < density)
        out = torch.relu(x @ w.T @ w + b)
        loss = ((x - out) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Float64 matmul kernels differ by processor (AVX2 vs AVX-512 blocking) in the last bits, so the
    # trained weights are rounded to a grid far coarser than that noise but far finer than anything
    # a method could resolve: the build stays byte-identical across machines.
    return np.round(w.detach().numpy(), 6)


def plant(params: dict[str, Any], seed: int) -> Planted:
    rng = np.random.default_rng(seed)
    d, n_samples = params["d"], params["n_samples"]
    structure = params.get("structure", "independent")
    signed = False

    if structure == "toy_model":
        w = _train_toy_model(seed, params["n_model"], d, params["density"], params["train_steps"])
        norms = np.sqrt(np.sum(w * w, axis=0))
        kept = np.flatnonzero(norms > 0.5)  # features the model actually represents
        rows, cols = _independent_codes(rng, n_samples, np.full(params["n_model"], params["density"]))
        mags = rng.uniform(0, 1, size=rows.size)
        codes = sp.csr_matrix((mags, (rows, cols)), shape=(n_samples, params["n_model"]))
        clean = codes @ w.T
        features = _unit_rows(w[:, kept].T)
        signed = True
    else:
        n = params["n"]
        if structure == "hierarchy":
            n_par, n_ch = params["n_parents"], params["n_children"]
            if n < n_par * (1 + n_ch):
                raise ValueError(f"hierarchy: n={n} must be at least n_parents*(1+n_children)")
            rows, cols = _hierarchy_codes(rng, n_samples, n_par, n_ch, params["p_parent"], params["p_child"],
                                          n - n_par * (1 + n_ch))
        else:
            probs = firing_probabilities(n, params["l0"], params.get("law", "uniform"), params.get("exponent", 1.0))
            if structure == "copula":
                rows, cols = _copula_codes(rng, n_samples, probs, params["rank"], params["rho"])
            elif structure == "independent":
                rows, cols = _independent_codes(rng, n_samples, probs)
            else:
                raise ValueError(f"unknown structure {structure!r}")
        if params.get("geometry", "random") == "clusters":
            features = clustered_features(rng, n, d, params["cluster_size"], tuple(params["cluster_cos"]))
        else:
            features = random_features(rng, n, d)
        mags = rng.uniform(0, 1, size=rows.size)
        codes = sp.csr_matrix((mags, (rows, cols)), shape=(n_samples, n))
        clean = codes @ features

    snr_db = params.get("snr_db")
    if snr_db is not None:
        signal_power = float(np.mean(clean * clean))
        sigma = math.sqrt(signal_power / 10 ** (snr_db / 10))
        clean = clean + sigma * rng.standard_normal(clean.shape)
    return Planted(samples=np.asarray(clean, dtype=np.float32), features=features, signed=signed)
