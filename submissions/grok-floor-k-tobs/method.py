"""Floor: predicts k t_obs, a fixed multiple of the observed prefix's length, with one k per
architecture (fitted by fit.py on the dev split). t_obs is set by when the run memorised
(min(max(3 t_mem, 0.004 T), T/4)), so this is the "groks a fixed factor after memorising" rule of
thumb, and it reads nothing of the run but the length of what it was given."""
from pathlib import Path

from phasebench_baselines.grok import after_prefix, architecture, load_params

_PARAMS = load_params(Path(__file__).resolve().parent)


def predict(problem):
    return {"t_grok": after_prefix(float(_PARAMS["k"][architecture(problem)]) * float(problem["t_obs"]), problem)}
