"""Plain Monte Carlo with the one-sided Clopper-Pearson bound: the floor of rare-behavior.

The whole budget goes on i.i.d. inputs from the public distribution; the estimate is the median of
p given the hits under the task's prior (never 0), the bound Clopper-Pearson's at 95%. Its pieces
are phasebench_baselines.rare's, which the white-box baselines fall back to as well.
"""
from phasebench_baselines.rare import LOG10_P_RANGE, mc_answer, monte_carlo_hits

__all__ = ["LOG10_P_RANGE", "estimate", "mc_answer"]  # mc_answer: the answer from a hit count (tests simulate the hits)


def estimate(problem):
    hits, n = monte_carlo_hits(problem)
    return mc_answer(hits, n)
