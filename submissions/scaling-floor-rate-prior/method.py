"""Floor (no skill) for scaling-exponents: the smallest observed loss times (query / largest observed
scale)^-k, with one k per public key (family, variables, loss_is_rate) fitted by fit.py on the train
split's answers (params.json). No curve is fitted to the instance's own points: of them it reads only
the smallest and largest loss and how far the queries lie beyond the data. A key the train split
does not hold (family C) gets k = 0: scaling-floor-min-loss. No exponent is given."""
import json
from pathlib import Path

from phasebench_baselines.scaling import rate_prior_answer, rate_prior_key

_PARAMS = Path(__file__).resolve().parent / "params.json"
K = json.loads(_PARAMS.read_text())["k"] if _PARAMS.exists() else {}   # {} before fit.py's first run


def predict(problem):
    return rate_prior_answer(problem, K.get(rate_prior_key(problem), 0.0))
