"""Fit k, one per public key, on the train split's answers (never dev or test); from the repository root:

    .venv/bin/phasebench data build --split train --task scaling-exponents
    .venv/bin/python submissions/scaling-floor-rate-prior/fit.py

Each key's k minimises the task's headline, the mean over its train instances of log_loss_error. As a
function of k that mean is piecewise linear (every query's ln L_hat = ln min L - k d is linear in k; the
error bends where it crosses the truth, where it reaches the clip at ln 10 and, for a rate, where the
prediction reaches 1), so its minimum over k >= 0 lies at 0 or at one of those bends: every one is
tried and the best kept (on a flat minimum, the middle of the first plateau). An exact minimiser,
not a grid: rerunning gives params.json byte for byte."""
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from benchmark.dataset import open_split  # noqa: E402  (after the repository is on sys.path)
from benchmark.tasks.scaling_exponents.scorer import LN10, log_loss_error  # noqa: E402
from phasebench_baselines.scaling import log_past_data, rate_prior_answer, rate_prior_key  # noqa: E402

TIE = 1e-12   # errors closer than this are equal (float rounding of the same plateau)


def train_items(data_dir: Path | None = None):
    """(problem, true losses) of every train instance, the problem as a method receives it."""
    split = open_split("scaling-exponents", "train", data_dir)
    split.verify()   # a split not built (or altered) raises, naming the file
    return [({**rec.public, **split.load_inputs(rec.id)}, np.asarray(split.load_answer(rec.id)["loss"], float))
            for rec in split.instances]


def bends(problem, truth) -> np.ndarray:
    """The k >= 0 at which one of this instance's query errors changes slope."""
    past, y = log_past_data(problem)
    gap = np.log(np.min(y)) - np.log(truth)
    with np.errstate(divide="ignore", invalid="ignore"):   # a query at the data's edge (past 0) bends nowhere
        ks = np.concatenate([(gap + c) / past for c in (0.0, LN10, -LN10)] + [np.log(np.min(y)) / past])
    return ks[np.isfinite(ks) & (ks >= 0)]


def error(k: float, items) -> float:
    with np.errstate(over="ignore", divide="ignore"):   # a far bend can send L_hat to 0: clipped at ln 10
        return float(np.mean([log_loss_error(rate_prior_answer(p, k)["loss"], t) for p, t in items]))


def fit_one(items) -> tuple[float, float]:
    """(k, its train error): the exact minimiser over k >= 0. Where the minimum is flat (a median-like
    plateau between two bends, as on family B's random features), the middle of the first such plateau,
    not whichever end float rounding favours."""
    candidates = np.unique(np.concatenate([[0.0], *(bends(p, t) for p, t in items)]))
    errors = np.array([error(float(k), items) for k in candidates])
    best = errors <= errors.min() + TIE
    first = int(np.argmax(best))
    last = first
    while last + 1 < len(best) and best[last + 1]:   # linear between bends: a run of minima is a plateau
        last += 1
    k = 0.5 * (candidates[first] + candidates[last])
    return float(k), error(float(k), items)


def fit(key=rate_prior_key, data_dir: Path | None = None) -> dict:
    """k, train error and instance count per key (``key``: a function of the problem); the train split
    from ``data_dir`` (default: where `phasebench data build` puts it)."""
    groups: dict[str, list] = {}
    for problem, truth in train_items(data_dir):
        groups.setdefault(key(problem), []).append((problem, truth))
    fits = {name: fit_one(items) for name, items in sorted(groups.items())}
    return {"k": {name: k for name, (k, _) in fits.items()},
            "train_error": {name: round(err, 6) for name, (_, err) in fits.items()},
            "n_train": {name: len(groups[name]) for name in fits}}


if __name__ == "__main__":
    (HERE / "params.json").write_text(json.dumps(fit(), indent=1, sort_keys=True) + "\n")
    print((HERE / "params.json").read_text())
