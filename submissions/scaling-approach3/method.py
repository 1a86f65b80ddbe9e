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

#: the interval's multiplier: the smallest K (steps of 0.1) whose 90% intervals cover 85% of the
#: held-out losses of the train split's 68 instances (phasebench_baselines.scaling; calibrate_intervals.py)
K = 2.3


def predict(problem):
    return sc.predict("scaling-approach3", problem, [a3.LAW], K)
