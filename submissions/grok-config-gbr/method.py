"""Configuration-only regressor: gradient boosting on the run's hyperparameters (architecture, log
learning rate, log weight decay, train fraction, log init scale, width, p, activation, operation, precision),
predicting log10 of the grok step (T for runs that never grok). The trees were fitted by fit.py on
the dev split (scikit-learn) and ship as arrays in params.json; they are walked here with numpy."""
from pathlib import Path

import numpy as np

from config_features import features
from phasebench_baselines.grok import after_prefix, load_params

_PARAMS = load_params(Path(__file__).resolve().parent)
_TREES = [{k: np.asarray(v) for k, v in t.items()} for t in _PARAMS.get("trees", [])]


def log10_step(problem) -> float:
    """init + learning_rate * sum of the trees' leaf values, summed in sklearn's order."""
    # sklearn's trees compare float32 features with float64 thresholds: casting the same way
    # keeps a feature lying on a threshold on the side sklearn sends it
    x = np.asarray(features(problem), dtype=np.float32).astype(float)
    if x.shape != (_PARAMS["n_features"],):
        raise ValueError(f"expected {_PARAMS['n_features']} features, got {x.shape}")
    raw = float(_PARAMS["init"])
    rate = float(_PARAMS["learning_rate"])
    for t in _TREES:
        node = 0
        while t["children_left"][node] != -1:
            node = t["children_left"][node] if x[t["feature"][node]] <= t["threshold"][node] \
                else t["children_right"][node]
        raw += rate * float(t["value"][node])
    return raw


def predict(problem):
    return {"t_grok": after_prefix(10 ** log10_step(problem), problem)}
