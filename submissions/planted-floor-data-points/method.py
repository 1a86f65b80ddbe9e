"""Floor: n samples drawn at random, used as atoms.

No learning at all: whatever recall this gets comes from samples that happen to lie close to a single
feature (one dominant coefficient), so it measures how much the data give away for free.
"""
from __future__ import annotations

import numpy as np


def recover_features(problem: dict) -> np.ndarray:
    x = np.asarray(problem["samples"], dtype=np.float64)
    n = int(problem["n_features"])
    rng = np.random.default_rng(int(problem.get("seed", 0)))
    # A zero sample has no direction (the scorer would match it to nothing), so draw among the others.
    nonzero = np.flatnonzero(np.any(x != 0, axis=1))
    pick = rng.choice(nonzero, size=min(n, nonzero.size), replace=False)
    return x[pick]
