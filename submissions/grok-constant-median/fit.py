"""Fit the constant of each architecture on the dev split: python submissions/grok-constant-median/fit.py"""
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchmark.dataset import open_split  # noqa: E402
from phasebench_baselines.grok import ARCHITECTURES, architecture, problems_of, write_params  # noqa: E402


def fit() -> dict:
    problems, truth = problems_of(open_split("grokking-onset", "dev"))
    arch = np.array([architecture(p) for p in problems])
    # the median of log10 y (= the median of y): the constant minimising the mean absolute log error
    return {"t_grok": {a: float(f"{10 ** np.median(np.log10(truth[arch == a])):.6g}") for a in ARCHITECTURES}}


if __name__ == "__main__":
    write_params(HERE, fit())
    print((HERE / "params.json").read_text())
