"""The prior constant: what a method knows about p before its first forward pass.

The task draws each instance's target log10 p uniformly on [-12, -3]: 10^-3 is the top of that
range, and the median of the prior, 10^-7.5, is the estimate with the least expected log10 error when
nothing else is known.
"""
import numpy as np

#: The announced range of log10 p (the task's description); a test checks it against the task.
LOG10_P_RANGE = (-12.0, -3.0)


def estimate(problem):
    lo, hi = LOG10_P_RANGE
    return {"p_hat": np.array(10.0 ** ((lo + hi) / 2)), "upper": np.array(10.0 ** hi)}
