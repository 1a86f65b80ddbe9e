"""Floor (no skill) for scaling-exponents: the smallest observed loss, predicted at every query.

No curve is fitted. The 90% interval is the no-skill guess that the loss falls once more by the
factor it fell across the observations: [min L * (min L / max L), min L]. No exponent is given
(each requested one counts at the worst value).
"""
from __future__ import annotations

import numpy as np


def predict(problem):
    y = np.asarray(problem["obs_loss"], dtype=float)
    y = y[np.isfinite(y) & (y > 0)]
    low, high = float(y.min()), float(y.max())
    q = int(problem["n_query"])
    return {"loss": np.full(q, low), "loss_low": np.full(q, low * low / high), "loss_high": np.full(q, low)}
