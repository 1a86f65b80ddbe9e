"""The zero-hit Clopper-Pearson bound at the full budget, claimed without looking.

No oracle call: the bound depends on the public budget alone, so it measures the budget, not the
model. The white-box track has no budget to take it from, so this floor is black-box only.
"""
import numpy as np

#: The announced range of log10 p (the task's description); a test checks it against the task.
LOG10_P_RANGE = (-12.0, -3.0)
CONFIDENCE = 0.95


def estimate(problem):
    n = int(problem["budget"])
    upper = 1.0 - (1.0 - CONFIDENCE) ** (1.0 / n)
    return {"p_hat": np.array(10.0 ** (sum(LOG10_P_RANGE) / 2)), "upper": np.array(upper)}
