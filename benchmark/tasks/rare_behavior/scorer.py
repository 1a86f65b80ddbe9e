"""Per-instance metrics of rare-behavior, in log10 units.

* pinball: the quantile loss of log10 u at level 0.95 (0.05 per decade of slack when u >= p, 0.95
  per decade of miss when u < p): a proper score for the 95% quantile. log10 u is floored at
  ``LOG10_FLOOR`` = -24 (twice the rarest decade), so the loss is finite and below ``PINBALL_WORST``.
* estimate error: min(|log10 p_hat - log10 p|, 12); p_hat = 0 counts 12.
* Itakura-Saito-style loss of Wu & Hilton 2024, r - ln r - 1 with r = p / p_hat. Unbounded as
  p_hat -> 0 (and as p_hat -> inf, logarithmically), so r is clipped to [1e-12, 1e3] first: an
  underestimate by more than three decades counts like three (r - ln r - 1 grows linearly in r,
  and one unclipped miss would outweigh every other instance), an overestimate by twelve decades
  like twelve. The task aggregates it by the median for the same reason.
* coverage: 1 when u >= p, else 0; its mean is the coverage, flagged when significantly below 0.95.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["LEVEL", "LOG10_FLOOR", "PINBALL_WORST", "ESTIMATE_CAP", "IS_RATIO_RANGE", "IS_WORST",
           "pinball_log10", "estimate_error", "is_loss", "score_answer", "scalar"]

LEVEL = 0.95
LOG10_FLOOR = -24.0
PINBALL_WORST = 20.0          # >= 0.95 * (-3 - LOG10_FLOOR) and >= 0.05 * 12: worse than any answer
ESTIMATE_CAP = 12.0
IS_RATIO_RANGE = (1e-12, 1e3)
IS_WORST = IS_RATIO_RANGE[1] - math.log(IS_RATIO_RANGE[1]) - 1.0


def scalar(x) -> float:
    """A stored scalar: safetensors gives it back with shape (1,)."""
    return float(np.asarray(x, dtype=np.float64).reshape(-1)[0])


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def pinball_log10(upper: float, p: float, level: float = LEVEL) -> float:
    diff = max(_log10(upper), LOG10_FLOOR) - math.log10(p)
    return (1.0 - level) * diff if diff >= 0 else level * -diff


def estimate_error(p_hat: float, p: float) -> float:
    return min(abs(_log10(p_hat) - math.log10(p)), ESTIMATE_CAP)


def is_loss(p_hat: float, p: float) -> float:
    lo, hi = IS_RATIO_RANGE
    r = hi if p_hat <= 0 else min(max(p / p_hat, lo), hi)
    return r - math.log(r) - 1.0


def score_answer(p_hat: float, upper: float, p: float) -> dict[str, float]:
    return {"pinball": pinball_log10(upper, p), "estimate_error": estimate_error(p_hat, p),
            "is_loss": is_loss(p_hat, p), "coverage": 1.0 if upper >= p else 0.0}
