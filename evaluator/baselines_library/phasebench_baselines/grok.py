"""grokking-onset: what its baselines share. numpy only. ``problems_of``, ``mean_log_error`` and
``write_params`` are for the baselines' fit.py scripts, which run outside the sandbox on a split
they open themselves (this library never imports the benchmark)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

MEM_ACC = 0.99
NEVER = math.inf
ARCHITECTURES = ("mlp", "transformer")
#: the per-layer weight norms every architecture logs: their squares sum to the squared norm of all parameters
NORM_KEYS = ("norm_embed", "norm_hidden", "norm_unembed")


def architecture(problem: dict) -> str:
    """The run's architecture ("mlp" or "transformer"); ValueError naming it for any other."""
    arch = str(problem["architecture"])
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    return arch


def memorised_at(problem: dict) -> int | None:
    """The first observed step with train accuracy >= 0.99 (the task's t_mem), None if not yet."""
    hit = np.flatnonzero(np.asarray(problem["train_acc"]) >= MEM_ACC)
    return int(problem["steps"][hit[0]]) if hit.size else None


def squared_norm(problem: dict, index: int) -> float:
    """The squared norm of every parameter at the observed step ``index``."""
    return float(sum(float(problem[k][index]) ** 2 for k in NORM_KEYS))


def after_prefix(step: float, problem: dict) -> float:
    """A run that had grokked within the prefix is not an instance: predict past t_obs."""
    return max(float(step), float(problem["t_obs"]) + 1.0)


def load_params(folder: str | Path) -> dict:
    """The parameters fit.py fitted on the dev split ({} before the first fit, so fit.py can import
    the method; predicting then fails with KeyError naming the parameter)."""
    path = Path(folder) / "params.json"
    return json.loads(path.read_text()) if path.exists() else {}


def problems_of(split):
    """(problems, true steps) of an opened split (``benchmark.dataset.open_split(task, "dev")``), the
    problems as the worker would see them (fit.py only: it needs the split's answers)."""
    problems, truth = [], []
    for rec in split.instances:
        problems.append({**rec.public, "instance_id": rec.id, "group": rec.group, **split.load_inputs(rec.id)})
        truth.append(float(split.load_answer(rec.id)["t_grok"].reshape(-1)[0]))
    return problems, np.asarray(truth)


def mean_log_error(predicted, truth, budgets) -> float:
    """The task's headline on a list of predictions: mean |log10 clip(y_hat) - log10 clip(y)|."""
    p = np.clip(np.asarray(predicted, dtype=float), 1.0, budgets)
    t = np.clip(np.asarray(truth, dtype=float), 1.0, budgets)
    return float(np.mean(np.abs(np.log10(p) - np.log10(t))))


def write_params(folder: str | Path, params: dict) -> None:
    (Path(folder) / "params.json").write_text(json.dumps(params, indent=1, sort_keys=True) + "\n")
