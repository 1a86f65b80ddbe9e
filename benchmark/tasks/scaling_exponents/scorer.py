"""Per-instance metrics of scaling-exponents."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["log_loss_error", "score_answer", "LN10", "COVERAGE"]

LN10 = math.log(10.0)
COVERAGE = 0.9


def log_loss_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over query points of |ln pred - ln truth|, each clipped at ln 10."""
    err = np.abs(np.log(np.asarray(pred, dtype=np.float64)) - np.log(np.asarray(truth, dtype=np.float64)))
    return float(np.mean(np.minimum(err, LN10)))


def _scalar(x: np.ndarray) -> float:
    """A stored scalar: safetensors gives it back with shape (1,)."""
    return float(np.asarray(x, dtype=np.float64).reshape(-1)[0])


def score_answer(answer: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                 requested: list[str]) -> dict[str, float | None]:
    err = log_loss_error(answer["loss"], truth["loss"])
    err_ref = log_loss_error(truth["ref_loss"], truth["loss"])
    if err_ref > 0:
        skill = float(np.clip(1.0 - err / err_ref, -1.0, 1.0))
    else:  # the reference is exact: matching it is the best, anything else the worst
        skill = 1.0 if err == 0 else -1.0
    exp_err = None
    if requested:
        errs = [min(abs(_scalar(answer[e]) - _scalar(truth[e])), 1.0) if e in answer else 1.0 for e in requested]
        exp_err = float(np.mean(errs))
    cov_err = None
    if "loss_low" in answer:
        inside = (answer["loss_low"] <= truth["loss"]) & (truth["loss"] <= answer["loss_high"])
        cov_err = float(abs(np.mean(inside) - COVERAGE))
    return {"log_loss_error": err, "exponent_error": exp_err, "skill_vs_approach3": skill,
            "interval_coverage_error": cov_err}
