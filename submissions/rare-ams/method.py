"""Adaptive multilevel splitting (Webb et al. 2019) with its asymptotic log-normal bound."""
from rare_common import adaptive_multilevel_splitting


def estimate(problem):
    return adaptive_multilevel_splitting(problem)
