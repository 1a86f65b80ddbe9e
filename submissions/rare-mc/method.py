"""Plain Monte Carlo with the one-sided Clopper-Pearson bound: the floor of rare-behavior."""
from rare_common import LOG10_P_RANGE, mc_answer, plain_monte_carlo

__all__ = ["LOG10_P_RANGE", "estimate", "mc_answer"]  # mc_answer: the answer from a hit count (tests simulate the hits)


def estimate(problem):
    return plain_monte_carlo(problem)
