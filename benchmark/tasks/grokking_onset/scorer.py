"""Per-run metrics of grokking-onset."""
from __future__ import annotations

import math

__all__ = ["clipped", "log_step_error", "never_score"]


def clipped(step: float, budget: int) -> float:
    """A predicted or true step on the scale the score uses: within [1, T] ("never" is T)."""
    return min(max(float(step), 1.0), float(budget))


def log_step_error(predicted: float, truth: float, budget: int) -> float:
    """|log10 y_hat - log10 y|, both clipped to [1, T]. A censored run has y = T, so it costs
    max(0, log10 T - log10 y_hat): predicting "never" (any value >= T) is exact there."""
    return abs(math.log10(clipped(predicted, budget)) - math.log10(clipped(truth, budget)))


def never_score(predicted: float, budget: int) -> float:
    """The method's score for "never groks within T", used for the AUROC: the clipped prediction on
    the budget's log scale, log10 y_hat / log10 T in [0, 1] (later predicted grokking ranks as more
    likely never; "never" is 1 whatever the budget, so runs with different budgets rank together)."""
    return math.log10(clipped(predicted, budget)) / math.log10(budget)
