"""Cross-entropy adaptive importance sampling with a defensive mixture and an empirical-Bernstein bound."""
from rare_common import cross_entropy_is


def estimate(problem):
    return cross_entropy_is(problem)
