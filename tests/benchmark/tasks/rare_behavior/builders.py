"""Tiny rare-behavior splits: a few real instances of each family (F2 in 2-D and 4-D), built in seconds."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from benchmark.dataset import SplitWriter, open_split
from benchmark.task import InstanceSpec, get_task
from benchmark.tasks.rare_behavior.task import BUDGETS

REPO = Path(__file__).resolve().parents[4]

TINY_CONFIGS = [
    ("F1", {"input_dist": "gaussian", "dim": 32, "rank": 1, "hidden_layers": 1, "width": 8, "classes": 1,
            "log10_p": -5.0}),
    ("F2", {"input_dist": "box", "dim": 2, "hidden_layers": 1, "width": 8, "classes": 3, "log10_p": -3.0}),
    ("F3", {"vocab": 4, "length": 5, "n_layers": 1, "width": 16, "n_heads": 2, "log10_p": -4.0}),
    ("F2", {"input_dist": "box", "dim": 4, "hidden_layers": 1, "width": 6, "classes": 1, "log10_p": -3.0}),
]


def build_rare_split(root: Path, task_name: str = "rare-behavior", configs=None, seed: int = 0):
    """A dev split of the given task with one tiny instance per family (ids tiny-<i>-<family>)."""
    task = get_task(task_name)
    writer = SplitWriter(root, task_name, "dev", root)
    for i, (family, params) in enumerate(configs or TINY_CONFIGS):
        params = {"budget": BUDGETS[i % len(BUDGETS)], **params}  # the black-box track's (drawn) budget
        spec = InstanceSpec(id=f"tiny-{i}-{family}", group=family, params=params, seed=seed + i)
        inst = task.generate(spec)
        writer.add(spec.id, family, inst.public_fields, inst.inputs, inst.answer, inst.answer_info)
    writer.close()
    return open_split(task_name, "dev", root)


def load_method(name: str):
    """submissions/<name>/method.py as a module; every rare-* folder has its own method (the shared
    code is the installed phasebench_baselines), so the name is taken out of sys.modules again after the import."""
    folder = str(REPO / "submissions" / name)
    saved = {k: sys.modules.pop(k) for k in ("method",) if k in sys.modules}
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("method")
    finally:
        sys.path.remove(folder)
        sys.modules.pop("method", None)
        sys.modules.update(saved)
