"""Scoring recovered atoms against planted features by one-to-one (Hungarian) matching."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["STRICT_THRESHOLD", "THRESHOLD", "score_atoms"]

THRESHOLD = 0.9
STRICT_THRESHOLD = 0.99


def _unit_rows(m: np.ndarray) -> np.ndarray:
    """Unit rows; a row with no direction (all zero, or any NaN or inf) becomes zero and so matches nothing.

    Each row is first divided by its largest absolute entry: the answer may have any norm, and the
    plain Euclidean norm of a finite row underflows to 0 below about 1e-154 per entry (correct atoms
    scaled by 1e-300 used to score 0) and overflows to inf above about 1e154. After the division every
    entry lies in [-1, 1] with one at +-1, so the norm lies in [1, sqrt(d)].
    """
    m = np.asarray(m, dtype=np.float64)
    out = np.zeros_like(m)
    if m.shape[0] == 0:
        return out
    peak = np.max(np.abs(m), axis=1)  # NaN for a row with a NaN, inf for one with an inf
    ok = np.isfinite(peak) & (peak > 0)
    scaled = m[ok] / peak[ok, None]
    out[ok] = scaled / np.sqrt(np.sum(scaled * scaled, axis=1, keepdims=True))
    return out


def score_atoms(features: np.ndarray, atoms: np.ndarray, signed: bool = False) -> dict[str, float]:
    """Metrics for atoms (m, d) against unit features (n, d), m <= n.

    Each feature is matched to at most one atom, maximising total similarity (|cos|, or signed
    cos where the sign is part of the truth); unmatched features count as similarity 0.
    """
    n = features.shape[0]
    m = atoms.shape[0]
    if m == 0:
        return {"recall@0.9": 0.0, "recall@0.99": 0.0, "matched_cos": 0.0, "precision@0.9": 0.0, "mmcs": 0.0}
    cos = _unit_rows(features) @ _unit_rows(atoms).T
    sim = cos if signed else np.abs(cos)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    matched = np.zeros(n)
    matched[rows] = sim[rows, cols]
    return {
        "recall@0.9": float(np.mean(matched >= THRESHOLD)),
        "recall@0.99": float(np.mean(matched >= STRICT_THRESHOLD)),
        "matched_cos": float(matched.sum() / n),
        "precision@0.9": float(np.sum(sim[rows, cols] >= THRESHOLD) / m),
        "mmcs": float(np.mean(np.maximum(sim.max(axis=1), 0.0))),
    }
