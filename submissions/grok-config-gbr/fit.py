"""Fit the regressor on the dev split and write its trees: python submissions/grok-config-gbr/fit.py

The dev table (features and true log10 steps) lives only in memory here: the folder ships the
fitted trees' arrays (params.json), never the answers they were fitted on."""
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from config_features import features  # noqa: E402
from benchmark.dataset import open_split  # noqa: E402
from phasebench_baselines.grok import problems_of  # noqa: E402

#: absolute-error loss because the score is a mean absolute log error; random_state fixes the fit
HYPERPARAMETERS = {"loss": "absolute_error", "n_estimators": 200, "max_depth": 3, "learning_rate": 0.05,
                   "random_state": 0}


def model() -> GradientBoostingRegressor:
    """The scikit-learn regressor fitted on the dev split's configurations and true log10 steps."""
    problems, truth = problems_of(open_split("grokking-onset", "dev"))
    x = np.asarray([features(p) for p in problems], dtype=float)
    return GradientBoostingRegressor(**HYPERPARAMETERS).fit(x, np.log10(truth))


def fit() -> dict:
    """The fitted model as plain arrays: method.py walks them with numpy (no sklearn, no pickle)."""
    gbr = model()
    init = np.asarray(gbr.init_.constant_, dtype=float).reshape(-1)
    if init.size != 1 or gbr.estimators_.shape[1] != 1:
        raise ValueError("expected a single-output regressor")
    trees = []
    for est in gbr.estimators_[:, 0]:
        t = est.tree_
        trees.append({"feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                      "children_left": t.children_left.tolist(), "children_right": t.children_right.tolist(),
                      "value": t.value.reshape(-1).tolist()})
    return {"init": float(init[0]), "learning_rate": float(gbr.learning_rate),
            "n_features": int(gbr.n_features_in_), "trees": trees}


def dumps(params: dict) -> str:
    """One tree a line, so that a refit reads as a diff of trees rather than of 10 000 numbers."""
    head = {k: v for k, v in params.items() if k != "trees"}
    lines = [json.dumps(t, sort_keys=True) for t in params["trees"]]
    return (json.dumps(head, sort_keys=True)[:-1] + ', "trees": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    (HERE / "params.json").write_text(dumps(fit()))
    print(f"wrote {HERE / 'params.json'}")
