"""Floor baseline: the top principal directions of the (uncentred) second-moment matrix.

PCA returns orthogonal directions, at most d of them, while the planted features are n > d
non-orthogonal directions in superposition, so only few features can be matched well.
"""
from __future__ import annotations

import numpy as np


def recover_features(problem: dict) -> np.ndarray:
    x = np.asarray(problem["samples"], dtype=np.float64)
    n = int(problem["n_features"])
    d = x.shape[1]
    k = min(d, n)
    # Centred PCA (the usual baseline); the covariance is d x d, so this is cheap for any N.
    mean = x.mean(axis=0)
    cov = (x.T @ x) / x.shape[0] - np.outer(mean, mean)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:k]
    atoms = evecs[:, order].T
    # Fix the sign so the output is deterministic: largest-magnitude entry positive.
    idx = np.argmax(np.abs(atoms), axis=1)
    atoms *= np.sign(atoms[np.arange(k), idx])[:, None]
    return atoms.astype(np.float32)
