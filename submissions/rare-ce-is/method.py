"""Cross-entropy adaptive importance sampling with a defensive mixture and an empirical-Bernstein bound."""
from rare_common import cross_entropy_is, token_cross_entropy

#: Sequences: the weight of each CE stage's refitted token tables against the old ones (1 - it is kept).
#: Chosen on the black-box train split, never on dev: scripts/fit_constants.py rare-ce-is --task
#: rare-behavior --constant TOKEN_SMOOTHING --values 0.1,0.2,0.3,0.5,0.7,0.9 (quantile_score 0.400,
#: 0.381, 0.415, 0.468, 0.675, 0.752; 0.7 was the default before).
TOKEN_SMOOTHING = 0.2


def estimate(problem):
    if problem["input_dist"] == "tokens":
        return token_cross_entropy(problem, smoothing=TOKEN_SMOOTHING)
    return cross_entropy_is(problem)
