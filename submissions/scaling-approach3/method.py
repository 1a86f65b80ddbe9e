"""Chinchilla approach 3 (Hoffmann et al. 2022; Besiroglu et al. 2024) for scaling-exponents.

Two varying variables (x1, x2), e.g. N and D:  L = E + A / x1^alpha + B / x2^beta; one varying
variable x:  L = E + A x^-alpha; fitted in log space with a Huber loss from the Besiroglu et al.
grid of starts. The law (its fit, bounds and checks) is phasebench_baselines.approach3's, shared
because scaling-bnsl and scaling-m4 fall back to it; this baseline is that law alone.

The fit is checked (phasebench_baselines.scaling): an exponent at a bound, E at its upper bound or
a term that has vanished inside the data is a fit that did not identify its exponents, and the
answer falls back to the smallest observed loss (said on stderr). The 90% interval is
phasebench_baselines.scaling's calibrated one, K below. numpy and scipy only.
"""
from __future__ import annotations

from phasebench_baselines import approach3 as a3
from phasebench_baselines import scaling as sc

try:  # shipped with scikit-learn
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

#: the interval's multiplier: the smallest K (steps of 0.1) whose 90% intervals cover 85% of the
#: held-out losses of the train split's 68 instances (phasebench_baselines.scaling; calibrate_intervals.py)
K = 2.3


def _predict(problem):
    out, notes, _ = sc.answer(problem, [a3.LAW], K)
    sc.log_notes("scaling-approach3", problem, notes)
    return out


def predict(problem):
    # one BLAS thread: the arrays are tiny and idle BLAS threads only cost time on a shared core
    if threadpool_limits is None:
        return _predict(problem)
    with threadpool_limits(limits=1):
        return _predict(problem)
