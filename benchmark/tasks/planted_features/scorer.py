"""Scoring recovered atoms against planted features by one-to-one (Hungarian) matching."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["score_atoms", "THRESHOLD", "STRICT_THRESHOLD"]

THRESHOLD = 0.9
STRICT_THRESHOLD = 0.99


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    # A zero atom has no direction: it matches nothing (cosine 0) instead of producing NaN.
    return np.divide(m, norms, out=np.zeros_like(m, dtype=np.float64), where=norms > 0)


def score_atoms(features: np.ndarray, atoms: np.ndarray, signed: bool = False) -> dict[str, float]:
    """Metrics for atoms (m, d) against unit features (n, d), m <= n.

    Each feature is matched to at most one atom, maximising total similarity (|cos|, or signed
    cos where the sign is part of the truth); unmatched features count as similarity 0.
    """
    n = features.shape[0]
    m = atoms.shape[0]
    if m == 0:
        return {"recall@0.9": 0.0, "recall@0.99": 0.0, "matched_cos": 0.0, "precision@0.9": 0.0, "mmcs": 0.0}
    cos = _unit_rows(features.astype(np.float64)) @ _unit_rows(atoms.astype(np.float64)).T
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
