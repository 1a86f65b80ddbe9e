"""Configuration-only regressor: gradient boosting on the run's hyperparameters (architecture, log
learning rate, log weight decay, train fraction, log init scale, width, p, activation, operation, precision),
predicting log10 of the grok step (T for runs that never grok). Fitted at import on the dev
split's table (dev_table.csv, written by fit.py): deterministic (random_state 0), no curves used."""
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor

from config_features import features


def _model() -> GradientBoostingRegressor:
    table = np.loadtxt(Path(__file__).resolve().parent / "dev_table.csv", delimiter=",", skiprows=1)
    x, y = table[:, :-1], table[:, -1]
    # absolute-error loss: the score is a mean absolute log error
    return GradientBoostingRegressor(loss="absolute_error", n_estimators=200, max_depth=3, learning_rate=0.05,
                                     random_state=0).fit(x, y)


_MODEL = _model()


def predict(problem):
    log_step = float(_MODEL.predict(np.asarray([features(problem)]))[0])
    return {"t_grok": max(10 ** log_step, float(problem["t_obs"]) + 1.0)}
