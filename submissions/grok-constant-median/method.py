"""Constant median: the same step for every run, the median over the dev split of the true step
(T for the runs that never grok). The best constant for a mean absolute log error, and the floor."""
from pathlib import Path

from grok_common import load_params

_PARAMS = load_params(Path(__file__).resolve().parent)


def predict(problem):
    return {"t_grok": float(_PARAMS["t_grok"])}
