"""Shared helpers of the scaling-exponents tests: the dev split as (record, problem, truth), the
baselines run in this process, answers scored and aggregated as the evaluator does."""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark.stats import aggregate
from benchmark.task import get_task
from evaluator.runner import method_problem
from tests.builders import REPO

TASK = get_task("scaling-exponents")
SUBMISSIONS = REPO / "submissions"


def dev_items(split) -> list[tuple[Any, dict[str, Any], dict[str, np.ndarray]]]:
    """(record, problem, truth) for every dev instance; the problem is what a method receives."""
    items = []
    for rec in split.instances:
        problem = {**method_problem(rec), **split.load_inputs(rec.id)}
        items.append((rec, problem, split.load_answer(rec.id)))
    return items


def load_method(name: str, entry: str = "method:predict") -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A submission's entry point, imported from its folder. Its sibling modules are imported under
    their own names (as in the sandbox, where the folder is on sys.path) and dropped afterwards, so
    that the identically named copies of another baseline are not mistaken for them."""
    folder = SUBMISSIONS / name
    module_name, func = entry.split(":")
    siblings = {p.stem for p in folder.glob("*.py")}
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k in siblings}
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"_scaling_sub_{name.replace('-', '_')}",
                                                      folder / f"{module_name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
        for k in siblings:
            sys.modules.pop(k, None)
        sys.modules.update(saved)
    return getattr(module, func)


def score(answer: dict[str, Any], rec, truth) -> dict[str, float | None]:
    answer = {k: v for k, v in answer.items() if not k.startswith("_")}
    return TASK.score(TASK.validate_answer(answer, rec), truth, rec)


def overall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The evaluator's aggregate of per-instance rows {"group", "metrics"}."""
    return aggregate(TASK.metadata, rows)
