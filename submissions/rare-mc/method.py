"""Plain Monte Carlo with the one-sided Clopper-Pearson bound: the floor of rare-behavior."""
from rare_common import plain_monte_carlo


def estimate(problem):
    return plain_monte_carlo(problem)
