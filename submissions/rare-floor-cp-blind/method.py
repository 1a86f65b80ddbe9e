"""The zero-hit Clopper-Pearson bound at the full budget, claimed without looking.

No oracle call: the bound depends on the public budget alone, so it measures the budget, not the
model. The white-box track has no budget to take it from, so this floor is black-box only.
"""
import numpy as np

#: The announced range of log10 p (the task's description); a test checks it against the task.
LOG10_P_RANGE = (-12.0, -3.0)
CONFIDENCE = 0.95


def estimate(problem):
    lo, hi = LOG10_P_RANGE
    n = int(problem["budget"])
    upper = min(1.0 - (1.0 - CONFIDENCE) ** (1.0 / n), 10.0 ** hi)
    return {"p_hat": np.array(10.0 ** ((lo + hi) / 2)), "upper": np.array(upper)}
