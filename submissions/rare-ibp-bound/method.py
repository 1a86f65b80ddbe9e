"""A sound upper bound by interval bound propagation (IBP) over an adaptive partition of the input
space (white-box, F2: low-dimensional ReLU MLPs, 2-D box or Gaussian inputs and 3-D to 6-D boxes).

The domain ([-1, 1]^d, or [-R, R]^d for N(0, I) with the exact outside mass 1 - (1 - 2 Phi(-R))^d
added to the bound) is split into axis-aligned cells. Each cell's box is propagated through the
network with interval arithmetic (Gowal et al. 2018), the last layer taken as differences
out_target - out_j (argmax) so that the comparison is bounded directly. A cell whose output interval
cannot satisfy the predicate holds no behaviour; one whose interval satisfies it everywhere is
"proven"; the rest are undecided and the most massive undecided cells are bisected along their
widest side, until the undecided mass is below 1% of the proven mass, or the cell or time budget
runs out. Cell masses are exact: volumes (box) and products of normal CDF differences (Gaussian).
The cell budget holds in 6-D too (at most MAX_CELLS cells of 2 d + 1 floats: about 0.5 GB at the
peak); the bound stays sound there but loosens, as the undecided layer along the decision boundary
needs many more cells per decade of slack than in the plane.

upper = proven mass + undecided mass (+ the Gaussian outside mass), inflated by 1e-9 relative for
floating-point rounding: sound, with no probability of failure (it is a 100% bound, used as the 95%
one). p_hat = proven mass + undecided mass x the hit fraction of plain Monte Carlo inside the
undecided cells (unbiased; with no hit and nothing proven, phasebench_baselines.rare's posterior_median
of that rate).
F1 (high-dimensional) and F3 (sequences) are outside IBP's reach here:
plain Monte Carlo with Clopper-Pearson, documented as the fallback.
"""
from __future__ import annotations

import math
import time

import numpy as np
from scipy.special import ndtr, ndtri

from phasebench_baselines.rare import answer, mc_answer, mlp_forward, monte_carlo_hits, posterior_median

__all__ = ["estimate", "ibp_bound", "interval_margin", "GAUSSIAN_RADIUS"]

GAUSSIAN_RADIUS = 9.0  # outside mass per coordinate 2 Phi(-9) = 2.3e-19
MAX_CELLS = 3_000_000
SPLIT_BATCH = 8192
TIME_BUDGET_S = 60.0
INSIDE_MC = 1 << 16
ROUNDING_SLACK = 1e-9


def _layers(problem):
    n = sum(1 for k in problem if k.startswith("model.w") and k[7:].isdigit())
    return [(np.asarray(problem[f"model.w{i}"], dtype=np.float64), np.asarray(problem[f"model.b{i}"], dtype=np.float64))
            for i in range(n)]


def interval_margin(layers, predicate, threshold, target, lo, hi):
    """Lower and upper bounds over each cell [lo, hi] of the margin: out0 - threshold, or the minimum
    over j != target of out_target - out_j. Shapes (cells, d) -> (cells,), (cells,)."""
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    for w, b in layers[:-1]:
        m, r = mid @ w.T + b, rad @ np.abs(w).T
        low, high = np.maximum(m - r, 0.0), np.maximum(m + r, 0.0)
        mid, rad = (low + high) / 2, (high - low) / 2
    w, b = layers[-1]
    if predicate == "threshold":
        wd, bd = w[:1], b[:1] - threshold
    else:
        others = [j for j in range(w.shape[0]) if j != target]
        wd, bd = w[target] - w[others], b[target] - b[others]
    m, r = mid @ wd.T + bd, rad @ np.abs(wd).T
    return (m - r).min(axis=1), (m + r).min(axis=1)


def _mass(kind, lo, hi):
    if kind == "box":
        return np.prod((hi - lo) / 2.0, axis=1)
    # Phi(hi) - Phi(lo), from the nearer tail so that far cells keep their relative precision
    upper_tail = lo > 0
    diff = np.where(upper_tail, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))
    return np.prod(np.maximum(diff, 0.0), axis=1)


def _sample_in_cells(kind, lo, hi, n, rng):
    """n points from the input distribution restricted to the union of the cells (exact inverse CDF)."""
    u = rng.random((n, lo.shape[1]))
    if kind == "box":
        return lo + u * (hi - lo)
    a, b = ndtr(lo), ndtr(hi)
    return np.clip(ndtri(a + u * (b - a)), lo, hi)


def ibp_bound(problem, time_budget_s=TIME_BUDGET_S, max_cells=MAX_CELLS):
    """(p_hat, upper, info) for a low-dimensional ReLU MLP."""
    started = time.perf_counter()
    rng = np.random.default_rng(problem["seed"])
    layers = _layers(problem)
    kind, dim = problem["input_dist"], int(problem["dim"])
    pred, thr, tgt = problem["predicate"], float(problem["threshold"]), int(problem["target"])
    radius = 1.0 if kind == "box" else GAUSSIAN_RADIUS
    outside = 0.0 if kind == "box" else -math.expm1(dim * math.log1p(-2.0 * ndtr(-radius)))
    # start from the 2^d orthants: the cell boundaries then sit on the axes
    corners = np.array(np.meshgrid(*[[0, 1]] * dim, indexing="ij")).reshape(dim, -1).T
    lo, hi = np.where(corners == 0, -radius, 0.0), np.where(corners == 0, 0.0, radius)
    proven, processed = 0.0, len(lo)
    # The undecided cells: their masses (in order; what is selected and summed) and, for each, the row
    # of its box in an append-only store. Removing the split cells then moves a mass and an index per
    # cell instead of both corners; the store is compacted once half of it is dead.
    store_lo, store_hi, used = np.empty((0, dim)), np.empty((0, dim)), 0
    undecided_ids, undecided_mass = np.zeros(0, dtype=np.int64), np.zeros(0)
    while True:
        low, up = interval_margin(layers, pred, thr, tgt, lo, hi)
        mass = _mass(kind, lo, hi)
        # decided only with a margin of ROUNDING_SLACK: float64 interval arithmetic is not outward-rounded
        proven += float(mass[low > ROUNDING_SLACK].sum())
        open_ = ~(low > ROUNDING_SLACK) & (up >= -ROUNDING_SLACK)  # else the predicate fails in the whole cell
        new_lo, new_hi = lo[open_], hi[open_]
        if used + len(new_lo) > len(store_lo):
            live = len(undecided_ids)
            if live + len(new_lo) <= len(store_lo) // 2:  # compact in place
                store_lo[:live], store_hi[:live] = store_lo[undecided_ids], store_hi[undecided_ids]
            else:  # grow (compacted)
                cap = 2 * (live + len(new_lo))
                grown_lo, grown_hi = np.empty((cap, dim)), np.empty((cap, dim))
                grown_lo[:live], grown_hi[:live] = store_lo[undecided_ids], store_hi[undecided_ids]
                store_lo, store_hi = grown_lo, grown_hi
            undecided_ids, used = np.arange(live), live
        store_lo[used:used + len(new_lo)], store_hi[used:used + len(new_lo)] = new_lo, new_hi
        undecided_ids = np.concatenate([undecided_ids, np.arange(used, used + len(new_lo))])
        used += len(new_lo)
        undecided_mass = np.concatenate([undecided_mass, mass[open_]])
        rest = float(undecided_mass.sum())
        if (rest <= 0.01 * proven or processed >= max_cells or len(undecided_mass) == 0
                or time.perf_counter() - started > time_budget_s):
            break
        # bisect the most massive undecided cells along their widest side
        k = min(SPLIT_BATCH, len(undecided_mass))
        top = np.argpartition(-undecided_mass, k - 1)[:k]
        keep = np.ones(len(undecided_mass), dtype=bool)
        keep[top] = False
        plo, phi = store_lo[undecided_ids[top]], store_hi[undecided_ids[top]]
        undecided_ids, undecided_mass = undecided_ids[keep], undecided_mass[keep]
        axis = np.argmax(phi - plo, axis=1)
        cut = (plo[np.arange(k), axis] + phi[np.arange(k), axis]) / 2
        left_hi, right_lo = phi.copy(), plo.copy()
        left_hi[np.arange(k), axis] = cut
        right_lo[np.arange(k), axis] = cut
        lo, hi = np.concatenate([plo, right_lo]), np.concatenate([left_hi, phi])
        processed += len(lo)
    rest = float(undecided_mass.sum())
    upper = (proven + rest + outside) * (1.0 + ROUNDING_SLACK)
    p_hat = proven
    if rest > 0:
        cell = undecided_ids[rng.choice(len(undecided_mass), size=INSIDE_MC, p=undecided_mass / rest)]
        x = _sample_in_cells(kind, store_lo[cell], store_hi[cell], INSIDE_MC, rng)
        out = mlp_forward({k[6:]: v for k, v in problem.items() if k.startswith("model.")}, x)
        if pred == "threshold":
            hit = out[:, 0] > thr
        else:
            hit = np.argmax(out, axis=1) == tgt
        p_hat += rest * float(hit.mean())
        if p_hat == 0:
            # nothing proven, no hit inside the undecided cells: the rate there given INSIDE_MC misses
            p_hat = posterior_median(0, INSIDE_MC, scale=rest)
    info = {"proven": proven, "undecided": rest, "cells": processed, "seconds": time.perf_counter() - started}
    return p_hat, upper, info


def estimate(problem):
    if problem.get("oracle") is not None:
        raise ValueError("rare-ibp-bound is a white-box method: it needs the weights (model.*), not an oracle")
    if problem["architecture"] != "mlp" or problem["family"] != "F2":
        # IBP over a partition is hopeless in 64-784 dimensions or on tokens: plain Monte Carlo
        return mc_answer(*monte_carlo_hits(problem))
    p_hat, upper, _ = ibp_bound(problem)
    return answer(p_hat, upper)
