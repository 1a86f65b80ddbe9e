"""Per-instance metrics of scaling-exponents."""
from __future__ import annotations

import math

import numpy as np

from ...answers import scalar

__all__ = ["INTERVAL_WORST", "LEVEL", "LN10", "interval_score", "log_loss_error", "score_answer"]

LN10 = math.log(10.0)
LEVEL = 0.9
#: The interval score's penalty per unit of ln loss outside the interval: 2 / (1 - level).
_MISS = 2.0 / (1.0 - LEVEL)
#: Per query, the interval score is clipped here: a zero-width interval a factor 10 off (the same
#: clip as log_loss_error's ln 10), so one absurd query cannot outweigh the rest of the split.
INTERVAL_WORST = _MISS * LN10


def log_loss_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over query points of |ln pred - ln truth|, each clipped at ln 10."""
    err = np.abs(np.log(np.asarray(pred, dtype=np.float64)) - np.log(np.asarray(truth, dtype=np.float64)))
    return float(np.mean(np.minimum(err, LN10)))


def interval_score(low: np.ndarray, high: np.ndarray, truth: np.ndarray) -> float:
    """The interval score at level 0.9 (Winkler 1972; Gneiting & Raftery 2007, eq. 43) in ln-loss
    units, mean over queries: width ln(high/low) plus 20 times the distance by which ln L falls
    outside [ln low, ln high], each query clipped at INTERVAL_WORST. It is proper: its expectation
    is smallest for the true 5% and 95% quantiles, so neither a huge interval nor an empty one pays.
    In ln units an instance's scale (losses near 0.1 or near 3) does not weigh on the mean. A
    non-positive low end is an interval reaching down to 0: infinitely wide in ln units."""
    tiny = np.finfo(np.float64).tiny
    lo = np.log(np.maximum(np.asarray(low, dtype=np.float64), tiny))
    hi = np.log(np.maximum(np.asarray(high, dtype=np.float64), tiny))
    y = np.log(np.asarray(truth, dtype=np.float64))
    score = (hi - lo) + _MISS * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))
    return float(np.mean(np.minimum(score, INTERVAL_WORST)))


def score_answer(answer: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                 requested: list[str]) -> dict[str, float | None]:
    err = log_loss_error(answer["loss"], truth["loss"])
    exp_err = None
    if requested:
        errs = [min(abs(scalar(answer[e]) - scalar(truth[e])), 1.0) if e in answer else 1.0 for e in requested]
        exp_err = float(np.mean(errs))
    # No interval claims nothing: scored as the widest one, so that giving intervals only where
    # they are easy does not pay. Its coverage is not defined.
    int_score, coverage = INTERVAL_WORST, None
    if "loss_low" in answer:
        int_score = interval_score(answer["loss_low"], answer["loss_high"], truth["loss"])
        inside = (answer["loss_low"] <= truth["loss"]) & (truth["loss"] <= answer["loss_high"])
        coverage = float(np.mean(inside))
    return {"log_loss_error": err, "exponent_error": exp_err, "interval_score": int_score,
            "interval_coverage": coverage}
