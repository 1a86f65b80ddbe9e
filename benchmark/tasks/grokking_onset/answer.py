"""The answer of grokking-onset: when a run memorises, when it groks, and what a method may see.

- t_mem: the first logged step with train accuracy >= 0.99.
- t_grok: the first logged step s >= t_mem at which test accuracy is >= 0.9 and stays >= 0.9 at
  every logged step up to s + max(200, 0.1 s) (that window must end within the budget T), and is
  >= 0.9 at the last logged step. Runs that never reach it (never memorise, memorise but never
  generalise, semi-grokking plateaus below 0.9, ungrokking at the end) are censored at T.
- t_obs: what a method sees, the logged steps <= min(max(3 t_mem, 0.004 T), T / 4) (T / 4 when the
  run has not memorised); runs with t_grok <= t_obs grok inside the prefix and are left out. The
  floor of 0.004 T (100 steps at T = 25000) lets runs that grok from about 0.004 T to 0.9 T (the
  hold window must fit), over two decades, be instances.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MEM_ACC", "GROK_ACC", "MIN_OBS_FRACTION", "MAX_OBS_FRACTION", "Onset", "memorisation_step", "grok_step",
           "observation_step", "onset"]

MEM_ACC = 0.99
GROK_ACC = 0.9
MIN_HOLD_STEPS = 200
HOLD_FRACTION = 0.1
MIN_OBS_FRACTION = 0.004   # t_obs is at least this share of T ...
MAX_OBS_FRACTION = 0.25    # ... and at most this one


@dataclass(frozen=True)
class Onset:
    t_mem: int | None       # None: never memorised within the budget
    t_grok: int | None      # None: censored at T
    t_obs: int              # the last logged step a method sees
    budget: int             # T

    @property
    def censored(self) -> bool:
        return self.t_grok is None

    @property
    def in_prefix(self) -> bool:
        """Grokked inside the observed prefix: such runs are left out of the task."""
        return self.t_grok is not None and self.t_grok <= self.t_obs

    @property
    def target(self) -> int:
        """The step to predict: t_grok, or T for a censored run."""
        return self.budget if self.t_grok is None else self.t_grok


def memorisation_step(steps: np.ndarray, train_acc: np.ndarray) -> int | None:
    hit = np.flatnonzero(np.asarray(train_acc) >= MEM_ACC)
    return int(steps[hit[0]]) if hit.size else None


def grok_step(steps: np.ndarray, test_acc: np.ndarray, t_mem: int | None, budget: int) -> int | None:
    steps = np.asarray(steps)
    ok = np.asarray(test_acc) >= GROK_ACC
    if t_mem is None or not ok[-1]:
        return None
    for i in np.flatnonzero(ok & (steps >= t_mem)):
        s = int(steps[i])
        end = s + max(MIN_HOLD_STEPS, HOLD_FRACTION * s)
        if end > budget:
            return None   # the hold cannot be checked within the run (later candidates neither)
        window = (steps >= s) & (steps <= end)
        if ok[window].all():
            return s
    return None


def observation_step(steps: np.ndarray, t_mem: int | None, budget: int) -> int:
    """The last logged step at or before min(max(3 t_mem, 0.004 T), T / 4)."""
    limit = MAX_OBS_FRACTION * budget
    if t_mem is not None:
        limit = min(max(3 * t_mem, MIN_OBS_FRACTION * budget), limit)
    steps = np.asarray(steps)
    return int(steps[steps <= limit][-1])


def onset(steps: np.ndarray, train_acc: np.ndarray, test_acc: np.ndarray, budget: int) -> Onset:
    if int(steps[-1]) != budget:
        raise ValueError(f"the logged steps end at {int(steps[-1])}, not at the budget {budget}")
    t_mem = memorisation_step(steps, train_acc)
    return Onset(t_mem, grok_step(steps, test_acc, t_mem, budget), observation_step(steps, t_mem, budget), budget)
