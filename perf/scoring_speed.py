"""Scoring speed of planted-features at the largest size (n = 4096 features, d = 256).

Prints the time to score a near-oracle and a random answer, and the cosine matrix alone as the
baseline the Hungarian matching adds to.
    python perf/scoring_speed.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmark.tasks.planted_features.scorer import score_atoms  # noqa: E402


def timed(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    n, d = 4096, 256
    f = rng.standard_normal((n, d))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    near = f[rng.permutation(n)] + 0.02 * rng.standard_normal((n, d))
    rand = rng.standard_normal((n, d))
    base = timed(lambda: np.abs(f @ rand.T))
    t_near = timed(lambda: score_atoms(f, near))
    t_rand = timed(lambda: score_atoms(f, rand))
    print(f"n={n} d={d}: cosine matrix alone {base:.3f} s (baseline)")
    print(f"score near-oracle answer: {t_near:.3f} s ({t_near / base:.1f}x baseline)")
    print(f"score random answer:      {t_rand:.3f} s ({t_rand / base:.1f}x baseline)")
    print("target: at most 5 s")


if __name__ == "__main__":
    main()
