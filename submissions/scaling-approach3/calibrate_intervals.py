"""Choose K, the interval multiplier of a scaling baseline (phasebench_baselines.scaling), on the task's train split;
never on dev or test answers. Build the split, then run from the repository root:

    .venv/bin/phasebench data build --split train --task scaling-exponents
    .venv/bin/python submissions/scaling-approach3/calibrate_intervals.py scaling-bnsl [...]

The train split is twice the test split's families A and B (68 instances, public answers, drawn from the
public train key, so sharing no instance with dev or test; family C is the published data, whose answers
are public and which the train split leaves out). Runs the baseline once on each instance, with the seed
the evaluator would give it, recording the three spreads of its interval, and prints for each K in steps
of 0.1 the interval score and coverage; the K shipped is the smallest whose coverage reaches 0.85 (the
interval score's own minimum covers 78-82%). About 1 (approach 3) to 5 (M4) minutes per baseline on one
core. The baselines that ship a K so chosen declare ``fitted_on: [train]``.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmark.dataset import open_split  # noqa: E402  (after the repository is on sys.path)
from benchmark.task import get_task  # noqa: E402
from evaluator.runner import method_problem  # noqa: E402

TASK = get_task("scaling-exponents")
KS = np.round(np.arange(0.8, 6.01, 0.1), 2)  # up to 6: loglog's residual spread understates its extrapolation error
TARGET = 0.85


def draws():
    """The train split's instances as the evaluator hands them to a method (record, problem, answers)."""
    split = open_split(TASK.name, "train")
    split.verify()
    out = []
    for rec in split.instances:
        problem = {**method_problem(rec), **split.load_inputs(rec.id)}
        out.append((rec, problem, split.load_answer(rec.id)))
    return out


def record(name: str, items):
    """The baseline's answers and interval parts on each item (its sc.answer, wrapped)."""
    folder = REPO / "submissions" / name
    sys.path.insert(0, str(folder))
    sys.modules.pop("method", None)
    method = importlib.import_module("method")
    sys.path.remove(str(folder))
    sc, seen = method.sc, []
    answer = sc.answer

    def wrapped(*args, **kwargs):
        seen.append(answer(*args, **kwargs))
        return seen[-1]
    sc.answer = wrapped
    out = []
    for rec, problem, truth in items:
        seen.clear()
        with contextlib.redirect_stderr(io.StringIO()):
            method.predict(dict(problem))
        out.append((rec, problem, truth, seen[0]))
    sc.answer = answer
    return sc, out


def sweep(sc, recorded):
    for k in KS:
        scores = []
        for rec, problem, truth, (ans, _, parts) in recorded:
            ans = dict(ans)
            if parts is not None:
                _, X, y, _, Q = sc.parse_problem(problem)
                LQ = np.log(Q) - (np.log(X).mean(0) if Q.shape[1] == 1 else 0.0)
                ans.update(sc.finalize(parts["pred_log"], sc.half_width(parts, k), LQ, sc.is_rate(problem), [], y))
            scores.append(TASK.score(TASK.validate_answer(ans, rec), truth, rec))
        yield k, np.mean([s["interval_score"] for s in scores]), np.mean([s["interval_coverage"] for s in scores])


if __name__ == "__main__":
    items = draws()
    for name in sys.argv[1:]:
        rows = list(sweep(*record(name, items)))
        for k, score, cov in rows:
            print(f"{name} K={k:.1f} interval_score {score:.3f} coverage {cov:.3f}")
        chosen = next((k for k, _, cov in rows if cov >= TARGET), None)
        if chosen is None:
            print(f"{name}: no K up to {KS[-1]:.1f} reaches coverage {TARGET}; K = {KS[-1]:.1f}")
        else:
            print(f"{name}: K = {chosen:.1f} (smallest with coverage >= {TARGET})")
