"""Floor: n random Gaussian directions, normalised to unit length."""
from __future__ import annotations

import numpy as np


def recover_features(problem: dict) -> np.ndarray:
    n = int(problem["n_features"])
    d = int(problem["dim"])
    rng = np.random.default_rng(int(problem.get("seed", 0)))
    atoms = rng.standard_normal((n, d))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    return atoms.astype(np.float32)
