"""Weight-norm clock (after Liu, Michaud & Tegmark 2023; Varma et al. 2023): once memorised, weight
decay shrinks the squared weight norm about as exp(-2 lr wd t) until it reaches the norm of the
generalising solution, V*. Predicted grok step:

    t_mem + c * ln(||theta(t_mem)||^2 / V*) / (lr * wd)

with c and V* fitted on the dev split for each architecture (params.json, written by fit.py): the
norm of the generalising solution depends on the parameter count and layout (an MLP's embeddings and
output layer against a transformer's five weight groups), and so may the clock's rate. The squared
norm is that of every parameter (the sum of the squared per-layer norms). Never (inf) when the run
has not memorised within the observed prefix or has no weight decay."""
import math
from pathlib import Path

import numpy as np

from phasebench_baselines.grok import NEVER, after_prefix, architecture, load_params, memorised_at, squared_norm

_PARAMS = load_params(Path(__file__).resolve().parent)


def clock(problem, c: float, log10_vstar: float) -> float:
    t_mem = memorised_at(problem)
    lr, wd = float(problem["lr"]), float(problem["wd"])
    if t_mem is None or wd <= 0:
        return NEVER
    i = int(np.flatnonzero(np.asarray(problem["steps"]) == t_mem)[0])
    excess = math.log(squared_norm(problem, i)) - log10_vstar * math.log(10)
    return after_prefix(t_mem + c * max(excess, 0.0) / (lr * wd), problem)


def predict(problem):
    fitted = _PARAMS[architecture(problem)]
    return {"t_grok": clock(problem, fitted["c"], fitted["log10_vstar"])}
