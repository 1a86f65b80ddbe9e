"""Instances drawn the way the task draws them, at small sizes, and the planted-features floors as modules."""
from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np

from benchmark.tasks.planted_features.generator import Planted, plant
from benchmark.tasks.planted_features.task import draw_config

REPO = Path(__file__).resolve().parents[4]

#: The task's size distribution at its smallest d and a few thousand samples: the firing rule, noise
#: and structure are the split's own, only N is smaller (which makes a duplicate-direction leak rarer,
#: not commoner, so an attack that scores here scores at least as well on the real split).
TINY_SIZES = {"d": (32,), "ratio": (3.0, 4.0), "n_samples": (6000, 8000)}


def variant(params: dict) -> str:
    """A tier's sub-kind: T4 draws copula or hierarchy codes, T6 clustered geometry or a toy model."""
    return params.get("structure", "independent") if params.get("geometry") != "clusters" else "clusters"


@cache
def tier_configs(seed: int = 0) -> dict[tuple[str, str], dict]:
    """One drawn configuration per (tier, variant), drawing on until every variant has appeared."""
    rng = np.random.default_rng(seed)
    wanted = {("T0", "independent"), ("T1", "independent"), ("T2", "independent"), ("T3", "independent"),
              ("T4", "copula"), ("T4", "hierarchy"), ("T5", "independent"), ("T6", "clusters"),
              ("T6", "toy_model")}
    found: dict[tuple[str, str], dict] = {}
    while set(found) != wanted:
        for tier in sorted({t for t, _ in wanted}):
            params = draw_config(tier, TINY_SIZES, rng)
            found.setdefault((tier, variant(params)), params)
    return found


@cache
def planted(tier: str, kind: str, seed: int = 0) -> Planted:
    return plant(tier_configs(seed)[(tier, kind)], 1000 + seed)


def load_method(name: str):
    """submissions/<name>/method.py under a module name of its own (every folder calls it method.py)."""
    path = REPO / "submissions" / name / "method.py"
    spec = importlib.util.spec_from_file_location(f"planted_floor_{name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
